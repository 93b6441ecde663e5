package answerfile

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// preseedValue returns the value of one question in a rendered preseed
// file (single-line values only).
func preseedValue(t *testing.T, file []byte, question string) string {
	t.Helper()
	for _, l := range strings.Split(string(file), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "d-i" && f[1] == question {
			_, v, _ := strings.Cut(l, " "+question+" "+f[2]+" ")
			return v
		}
	}
	t.Fatalf("no %s in the preseed file", question)
	return ""
}

// runEarlyCommand runs the rendered partman/early_command the way d-i
// does (sh -c), under busybox ash, against a fake /sys. /tmp and debconf
// are moved into a scratch directory; debconf-set and the error dialog are
// recorded.
func runEarlyCommand(t *testing.T, cmd, root string) (exitCode int, set, questions, stderr string) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox is not installed (apt-get install busybox): the early command runs under d-i's busybox ash")
	}
	w := t.TempDir()
	for _, d := range []string{"bin", "tmp", "state/db"} {
		require.NoError(t, os.MkdirAll(filepath.Join(w, d), 0o755))
	}
	conf, err := filepath.Abs("testdata/partman/confmodule.sh")
	require.NoError(t, err)
	cmd = strings.NewReplacer("/tmp/", w+"/tmp/", "/usr/share/debconf/confmodule", conf).Replace(cmd)
	require.NoError(t, os.Symlink(bb, filepath.Join(w, "bin", "sh")))
	stub := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(w, "bin", name), []byte("#!"+bb+" sh\n"+body+"\n"), 0o755))
	}
	stub("debconf-set", `echo "$1 $2" >>"$PM_STATE/set"`)
	stub("debconf-loadtemplate", `grep -q '^Template: pxekit/stop' "$2" && grep -q '^ [$]{MESSAGE}' "$2" && echo loaded >>"$PM_STATE/templates"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bb, "sh", "-c", cmd)
	c.Env = []string{"PATH=" + filepath.Join(w, "bin") + ":/usr/bin:/bin", "PXEKIT_ROOT=" + root, "PM_STATE=" + filepath.Join(w, "state")}
	var errb bytes.Buffer
	c.Stderr = &errb
	err = c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		exitCode = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	read := func(n string) string { b, _ := os.ReadFile(filepath.Join(w, "state", n)); return string(b) }
	if read("templates") == "" && strings.Contains(read("questions"), "pxekit/stop") {
		t.Error("the error dialog was asked for without its template")
	}
	return exitCode, read("set"), read("questions"), errb.String()
}

// The early command picks the disk by the one rule before partman runs,
// and stops the install with a message naming both sizes when the disk is
// too small: d-i would otherwise silently use its own atomic recipe.
func TestPreseedEarlyCommandPicksDisk(t *testing.T) {
	for _, scheme := range []string{SchemePlain, SchemeLVM} {
		spec := DemoSpec(scheme)
		file, err := Render("debian-12", KindPreseed, spec)
		require.NoError(t, err)
		cmd := preseedValue(t, file, "partman/early_command")
		assert.NotContains(t, cmd, `\`, "no backslash for the preseed loader to interpret")
		l := spec.Layout.withDefaults()
		need := preseedMinDiskMiB(&l)

		// A server: a USB stick (removable, smaller), a small boot SSD and
		// a large data disk. The SSD is taken.
		root := fakeSys(t, []fakeDisk{
			{name: "sda", mib: 2 << 20},
			{name: "sdb", mib: 7632, removable: true},
			{name: "nvme0n1", mib: 9536},
			{name: "sr0", mib: 700, cd: true},
		}, nil)
		code, set, questions, stderr := runEarlyCommand(t, cmd, root)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "partman-auto/disk /dev/nvme0n1\ngrub-installer/bootdev /dev/nvme0n1\n", set)
		assert.Empty(t, questions)
		assert.Contains(t, stderr, "install disk nvme0n1")

		// Only a disk too small for the layout: stop, naming both sizes.
		root = fakeSys(t, []fakeDisk{{name: "sda", mib: need - 1}, {name: "sdb", mib: 64000, removable: true}}, nil)
		code, set, questions, stderr = runEarlyCommand(t, cmd, root)
		assert.Equal(t, 1, code)
		assert.Empty(t, set, "no disk may be handed to partman")
		assert.Contains(t, questions, "critical pxekit/stop")
		assert.Contains(t, stderr, "disk sda is "+strconv.Itoa(need-1)+" MiB, the layout needs at least "+strconv.Itoa(need)+" MiB")

		// No disk at all.
		root = fakeSys(t, []fakeDisk{{name: "sr0", mib: 700, cd: true}}, nil)
		code, _, questions, stderr = runEarlyCommand(t, cmd, root)
		assert.Equal(t, 1, code)
		assert.Contains(t, questions, "critical pxekit/stop")
		assert.Contains(t, stderr, "no disk matches")
	}
}

// A disk selector in the spec reaches the script: the serial picks the
// large disk even though a smaller one is eligible.
func TestPreseedEarlyCommandSelectors(t *testing.T) {
	spec := DemoSpec(SchemePlain)
	spec.Disk.Serial = "DATA1"
	file, err := Render("debian-11", KindPreseed, spec)
	require.NoError(t, err)
	root := fakeSys(t, []fakeDisk{
		{name: "sda", mib: 2 << 20, serial: "DATA1"},
		{name: "sdb", mib: 20000, serial: "BOOT"},
	}, nil)
	code, set, _, stderr := runEarlyCommand(t, preseedValue(t, file, "partman/early_command"), root)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "partman-auto/disk /dev/sda\ngrub-installer/bootdev /dev/sda\n", set)
}

// Partman counts MB, the layout MiB: a disk that passes the early check is
// one on which choose_recipe keeps the recipe.
func TestPreseedMinDiskCoversRecipe(t *testing.T) {
	for _, scheme := range []string{SchemePlain, SchemeLVM} {
		l := DefaultLayout(scheme)
		need := preseedMinDiskMiB(&l)
		assert.GreaterOrEqual(t, need, l.MinDiskMiB())
		var mb int64
		for _, line := range partmanRecipe(&l) {
			n, err := strconv.ParseInt(strings.Fields(line)[0], 10, 64)
			require.NoError(t, err)
			mb += n
		}
		assert.LessOrEqual(t, mb*1_000_000, int64(need)<<20, scheme)
		assert.Less(t, need, 9536, "%s: the default layout must fit a 10 GB disk", scheme)
	}
}
