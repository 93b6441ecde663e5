package answerfile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/osid"
)

// The partman tests run debian-installer's own partitioning code — the
// shell of partman-auto, partman-auto-lvm and partman-base from Debian 12
// (written against 162, 91 and 226) — over the recipes this package renders, with debconf and
// parted_server replaced by the stand-ins in testdata/partman. That code is
// what decides, with no one at the console, whether our recipe is used or
// silently replaced by d-i's "atomic" one, and whether the LVM volume group
// has its physical volume.
//
// The code is not vendored. PXEKIT_PARTMAN_SRC names a directory into which
// the three udebs were unpacked (dpkg-deb -x), holding lib/partman/lib/ and
// bin/; .ci/run fills the default one.
const defaultPartmanSrc = "/var/cache/pxekit/partman"

func partmanSrc(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PXEKIT_PARTMAN_SRC")
	if dir == "" {
		dir = defaultPartmanSrc
	}
	for _, f := range []string{"lib/partman/lib/recipes.sh", "lib/partman/lib/auto-lvm.sh", "lib/partman/lib/base.sh", "bin/perform_recipe_by_lvm"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Skipf("debian-installer's partman code is not at %s (%s missing): set PXEKIT_PARTMAN_SRC to a directory "+
				"holding the bookworm udebs partman-base, partman-auto and partman-auto-lvm unpacked with dpkg-deb -x, as .ci/run does", dir, f)
		}
	}
	return dir
}

// harnessShell is the shell the installer code runs under: busybox ash, as
// in d-i, when the host has it.
func harnessShell(t *testing.T) []string {
	if p, err := exec.LookPath("busybox"); err == nil {
		return []string{p, "sh"}
	}
	t.Log("busybox not installed: running partman's code under /bin/sh instead of busybox ash")
	return []string{"/bin/sh"}
}

// partmanHarness lays out a scratch root: the real library and programs
// with their absolute paths moved into it, the stand-ins, and stub
// commands on PATH.
type partmanHarness struct {
	w     string
	shell []string
}

func newPartmanHarness(t *testing.T) *partmanHarness {
	src := partmanSrc(t)
	h := &partmanHarness{w: t.TempDir(), shell: harnessShell(t)}
	for _, d := range []string{"partman/lib", "bin", "var/devices", "tmp", "state/db"} {
		require.NoError(t, os.MkdirAll(filepath.Join(h.w, d), 0o755))
	}
	lib := filepath.Join(h.w, "partman/lib")
	rewrite := func(b []byte) []byte {
		// Tokens first, so that a replacement (the scratch root is under
		// /tmp) is not rewritten again.
		r := strings.NewReplacer(
			"/usr/share/debconf/confmodule", lib+"/confmodule.sh",
			"/var/lib/partman", h.w+"/var",
			"/lib/partman/", h.w+"/partman/",
			"/tmp/", h.w+"/tmp/",
		)
		return []byte(r.Replace(string(b)))
	}
	for _, f := range []string{"base.sh", "recipes.sh", "auto-shared.sh", "auto-lvm.sh"} {
		b, err := os.ReadFile(filepath.Join(src, "lib/partman/lib", f))
		require.NoError(t, err)
		b = rewrite(b)
		if f == "base.sh" {
			stub, err := os.ReadFile("testdata/partman/parted.sh")
			require.NoError(t, err)
			b = append(b, stub...)
		}
		require.NoError(t, os.WriteFile(filepath.Join(lib, f), b, 0o644))
	}
	for _, f := range []string{"confmodule.sh", "lvm-base.sh", "commit.sh", "disk-label.sh"} {
		b, err := os.ReadFile(filepath.Join("testdata/partman", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(lib, f), b, 0o644))
	}
	// d-i's own recipes, which choose_recipe falls back to.
	recipes, _ := filepath.Glob(filepath.Join(src, "lib/partman/recipes*"))
	for _, d := range recipes {
		files, _ := filepath.Glob(filepath.Join(d, "*"))
		dst := filepath.Join(h.w, "partman", filepath.Base(d))
		require.NoError(t, os.MkdirAll(dst, 0o755))
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644))
		}
	}
	shebang := "#!" + strings.Join(h.shell, " ") + "\n"
	for _, f := range []string{"autopartition", "perform_recipe", "autopartition-lvm", "perform_recipe_by_lvm"} {
		b, err := os.ReadFile(filepath.Join(src, "bin", f))
		require.NoError(t, err)
		b = rewrite(b)
		b = append([]byte(shebang), bytes.TrimPrefix(b, []byte("#!/bin/sh\n"))...)
		require.NoError(t, os.WriteFile(filepath.Join(h.w, "bin", f), b, 0o755))
	}
	stubs := map[string]string{
		"logger":     `echo "$*" >>"$PM_STATE/log"`,
		"update-dev": `:`, "log-output": `:`, "modprobe": `:`, "vgdisplay": `:`,
		"archdetect": `echo amd64/efi`,
		// vgs -o vg_free --units K --noheading --nosuffix VG: free space
		// in decimal kilobytes.
		"vgs": `for vg; do :; done; read ext free <"$PM_STATE/vg/$vg"; echo "  $((free * 4194304 / 1000))"`,
	}
	for name, body := range stubs {
		require.NoError(t, os.WriteFile(filepath.Join(h.w, "bin", name), []byte(shebang+body+"\n"), 0o755))
	}
	if h.shell[0] != "/bin/sh" {
		// The installer's tools are busybox applets too.
		out, err := exec.Command(h.shell[0], "--list").Output()
		require.NoError(t, err)
		have := map[string]bool{}
		for _, a := range strings.Fields(string(out)) {
			have[a] = true
		}
		for _, a := range []string{"awk", "sed", "grep", "expr", "cat", "head", "tail", "wc", "sort", "tr", "mkdir", "rm", "mv", "ls", "cut", "printf", "basename", "readlink"} {
			if have[a] {
				require.NoError(t, os.Symlink(h.shell[0], filepath.Join(h.w, "bin", a)))
			}
		}
	}
	return h
}

// preseed loads the answers of a rendered preseed file into the debconf
// stand-in, as d-i's preseed loader would: continued lines joined, each
// answer marked as seen.
func (h *partmanHarness) preseed(t *testing.T, file []byte) {
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if cur.Len() == 0 && (strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s)
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		q := f[1]
		_, val, _ := strings.Cut(strings.TrimSpace(l), " "+q+" "+f[2])
		name := filepath.Join(h.w, "state/db", strings.ReplaceAll(q, "/", "%"))
		require.NoError(t, os.WriteFile(name, []byte(strings.TrimSpace(val)), 0o644))
		require.NoError(t, os.WriteFile(name+".preseeded", nil, 0o644))
	}
}

type partmanResult struct {
	rc        int
	parts     []partmanPart
	lvm       []string
	questions []string
	log       string
	out       string
}

type partmanPart struct {
	device, path string
	bytes        int64
	method, mp   string
}

// run partitions one blank disk of size bytes with the preseeded answers.
func (h *partmanHarness) run(t *testing.T, mode string, size int64) partmanResult {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	driver, err := filepath.Abs("testdata/partman/driver.sh")
	require.NoError(t, err)
	args := append(append([]string(nil), h.shell[1:]...), driver, mode, strconv.FormatInt(size, 10))
	cmd := exec.CommandContext(ctx, h.shell[0], args...)
	cmd.Env = []string{
		"PATH=" + filepath.Join(h.w, "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"PM_W=" + h.w, "PM_STATE=" + filepath.Join(h.w, "state"), "PM_LIB=" + filepath.Join(h.w, "partman/lib"),
		"DEVICES=" + filepath.Join(h.w, "var/devices"), "LC_ALL=C",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "driver: %s", stderr.String())
	r := partmanResult{rc: -1, out: string(out) + stderr.String()}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "RC":
			r.rc, _ = strconv.Atoi(f[1])
		case len(f) == 6 && f[0] == "PART":
			n, _ := strconv.ParseInt(f[3], 10, 64)
			r.parts = append(r.parts, partmanPart{device: f[1], path: f[2], bytes: n, method: f[4], mp: f[5]})
		case len(f) > 0 && (f[0] == "VG" || f[0] == "LV"):
			r.lvm = append(r.lvm, l)
		}
	}
	if b, err := os.ReadFile(filepath.Join(h.w, "state/questions")); err == nil {
		r.questions = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if b, err := os.ReadFile(filepath.Join(h.w, "state/log")); err == nil {
		r.log = string(b)
	}
	return r
}

const (
	disk10GB = 10_000_000_000
	disk2TB  = 2_000_000_000_000
	mib      = 1 << 20
)

// TestPartmanTakesOurRecipe: for every Debian release and scheme, on a
// 10 GB and a 2 TB disk, d-i's choose_recipe keeps our expert recipe, no
// critical question is asked (that would stop an unattended install:
// partman-auto-lvm/no_pv_in_vg, partman-auto/no_recipe,
// autopartitioning_failed, ...), and the disk ends up with the layout's
// partitions and volumes at no less than their sizes.
func TestPartmanTakesOurRecipe(t *testing.T) {
	partmanSrc(t)
	type tc struct {
		osID, scheme, custom string
	}
	var cases []tc
	for _, osID := range []string{"debian-9", "debian-10", "debian-11", "debian-12"} {
		for _, scheme := range []string{SchemePlain, SchemeLVM} {
			cases = append(cases, tc{osID, scheme, "demo"})
		}
	}
	// The recipe depends on the layout only, not on the release.
	for _, scheme := range []string{SchemePlain, SchemeLVM} {
		cases = append(cases, tc{"debian-12", scheme, "full"}, tc{"debian-12", scheme, "offline"})
	}
	// / on LVM and no /boot partition: partman-auto-lvm asks no_boot.
	cases = append(cases, tc{"debian-12", SchemeLVM, "noboot"})
	for _, c := range cases {
		info, _ := osid.Lookup(c.osID)
		spec := DemoSpec(c.scheme)
		switch c.custom {
		case "full":
			spec = fullSpec(info, c.scheme)
		case "offline":
			spec = offlineSpec(info, c.scheme)
		case "noboot":
			spec.Layout.Partitions = []Volume{{Mount: "/boot/efi", Size: 512}}
		}
		file, err := (&Renderer{Rand: zeroReader{}}).Render(c.osID, KindPreseed, spec)
		require.NoError(t, err)
		layout := spec.Layout.withDefaults()
		// A 10 GB disk when the layout fits one, a 2 TB disk, and for
		// Debian 12 the smallest disk the early check lets through.
		need := int64(preseedMinDiskMiB(&layout)) * mib
		var sizes []int64
		if need <= disk10GB {
			sizes = append(sizes, disk10GB)
		}
		sizes = append(sizes, disk2TB)
		if c.osID == "debian-12" {
			sizes = append(sizes, need)
		}
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%s/%s/%dMB", c.osID, c.scheme, c.custom, size/1e6), func(t *testing.T) {
				t.Parallel()
				h := newPartmanHarness(t)
				h.preseed(t, file)
				r := h.run(t, c.scheme, size)
				for _, q := range r.questions {
					assert.False(t, strings.HasPrefix(q, "critical "), "critical question %q\n%s", q, r.out)
				}
				assert.NotContains(t, r.log, "too small for expert recipe", "d-i dropped our recipe")
				require.Equal(t, 0, r.rc, "autopartition failed:\n%s\nlog: %s", r.out, r.log)
				checkPartmanLayout(t, layout, size, r)
				if testing.Verbose() {
					t.Logf("%v\n%s", r.parts, strings.Join(r.lvm, "\n"))
				}
			})
		}
	}
}

func checkPartmanLayout(t *testing.T, l Layout, size int64, r partmanResult) {
	t.Helper()
	byMount := map[string]partmanPart{}
	var total int64
	for _, p := range r.parts {
		key := p.mp
		switch p.method {
		case "efi", "biosgrub", "swap", "lvm":
			key = p.method
		}
		if !strings.HasPrefix(p.device, "/dev/mapper/") {
			total += p.bytes
		}
		byMount[key] = p
	}
	assert.LessOrEqual(t, total, size, "partitions overflow the disk")
	require.Contains(t, byMount, "biosgrub", "no BIOS boot partition: %v", r.parts)
	assert.GreaterOrEqual(t, byMount["biosgrub"].bytes, int64(mib))
	want := func(v Volume, lv bool) {
		key := v.Mount
		switch v.Mount {
		case "/boot/efi":
			key = "efi"
		case "swap":
			key = "swap"
		}
		p, ok := byMount[key]
		if !assert.True(t, ok, "%s missing: %v", v.Mount, r.parts) {
			return
		}
		assert.Equal(t, lv, strings.HasPrefix(p.device, "/dev/mapper/"), "%s on %s", v.Mount, p.device)
		assert.GreaterOrEqual(t, p.bytes, int64(v.Size)*mib, "%s smaller than its %d MiB", v.Mount, v.Size)
		if v.Grow {
			// The growing volume takes what the others leave.
			assert.Greater(t, p.bytes, size*8/10-int64(l.MinDiskMiB())*mib, "%s did not grow", v.Mount)
		}
	}
	for _, v := range l.Partitions {
		want(v, false)
	}
	if l.Scheme == SchemeLVM {
		require.Contains(t, byMount, "lvm", "no physical volume: %v", r.parts)
		require.NotEmpty(t, r.lvm)
		assert.Contains(t, r.lvm[0], "VG "+l.LVM.VG+" "+byMount["lvm"].path, "volume group on the wrong PV")
		for _, v := range l.LVM.Volumes {
			want(v, true)
		}
	}
}

// TestPartmanCatchesBrokenRecipes shows the harness sees the failures the
// installer had: an LVM recipe without a PV for its VG stops on
// partman-auto-lvm/no_pv_in_vg, / on LVM without a /boot partition asks
// partman-auto-lvm/no_boot unless answered, and a recipe larger than the
// disk is dropped for d-i's atomic one.
func TestPartmanCatchesBrokenRecipes(t *testing.T) {
	partmanSrc(t)
	spec := DemoSpec(SchemeLVM)
	file, err := Render("debian-12", KindPreseed, spec)
	require.NoError(t, err)

	t.Run("no PV line", func(t *testing.T) {
		var kept []string
		for _, l := range strings.Split(string(file), "\n") {
			if !strings.Contains(l, "method{ lvm }") {
				kept = append(kept, l)
			}
		}
		h := newPartmanHarness(t)
		h.preseed(t, []byte(strings.Join(kept, "\n")))
		r := h.run(t, SchemeLVM, disk10GB)
		assert.Contains(t, r.questions, "critical partman-auto-lvm/no_pv_in_vg", r.out)
	})
	t.Run("no /boot, no_boot not answered", func(t *testing.T) {
		s := DemoSpec(SchemeLVM)
		s.Layout.Partitions = []Volume{{Mount: "/boot/efi", Size: 512}}
		f, err := Render("debian-12", KindPreseed, s)
		require.NoError(t, err)
		h := newPartmanHarness(t)
		h.preseed(t, []byte(strings.ReplaceAll(string(f), "partman-auto-lvm/no_boot", "pxekit-test/removed")))
		r := h.run(t, SchemeLVM, disk10GB)
		assert.Contains(t, r.questions, "critical partman-auto-lvm/no_boot", r.out)
	})
	t.Run("too small", func(t *testing.T) {
		h := newPartmanHarness(t)
		h.preseed(t, file)
		r := h.run(t, SchemeLVM, 4_000_000_000)
		assert.Contains(t, r.log, "too small for expert recipe", r.out)
	})
}
