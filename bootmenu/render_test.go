package bootmenu

import (
	"context"
	"errors"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

const (
	testHTTP   = "http://10.77.0.1:8080/"
	testAnswer = "http://10.77.0.1:8080/answers/"
)

// goldenCases is one menu per installer family and generation, each with
// the GRUB that ships with it.
var goldenOS = []string{
	"centos-7.9", "rocky-8.5", "rocky-9.0", "openeuler-22.03", "kylin-v10",
	"ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04", "debian-9", "debian-12",
}

func testInput(id string) InstallInput {
	repo := testHTTP + id + "/"
	if strings.HasPrefix(id, "ubuntu") {
		repo = testHTTP + "iso/" + id + "-live-server-amd64.iso"
	}
	return InstallInput{
		RepoURL:      repo,
		AnswerURL:    testAnswer + id,
		Console:      "ttyS0,115200n8",
		InstallerNet: InstallerNet{Nameservers: []netip.Addr{netip.MustParseAddr("10.77.0.1")}},
	}
}

type golden struct {
	name string
	menu *Menu
	kind Kind
	opt  Options
}

func goldenCases(t testing.TB) []golden {
	var out []golden
	for _, id := range goldenOS {
		m, err := InstallMenu(id, id, testInput(id))
		require.NoError(t, err, id)
		d, err := DialectFor(id)
		require.NoError(t, err)
		for _, k := range Kinds() {
			out = append(out, golden{name: id + "." + string(k), menu: m, kind: k,
				opt: Options{HTTPBase: testHTTP, GRUBDialect: d, PXELinuxUI: "menu.c32"}})
		}
	}
	// The end-to-end layout: Debian's signed GRUB, files at the root over
	// TFTP, plain pxelinux, iPXE with relative paths.
	m, err := InstallMenu("debian-12", "", InstallInput{
		AnswerURL:    "http://10.77.0.1:8080/preseed.cfg",
		Console:      "ttyS0,115200n8",
		InstallerNet: InstallerNet{Nameservers: []netip.Addr{netip.MustParseAddr("10.77.0.1")}},
	})
	require.NoError(t, err)
	for _, k := range Kinds() {
		out = append(out, golden{name: "debian-12-tftp." + string(k), menu: m, kind: k,
			opt: Options{GRUBDialect: GRUBDebian}})
	}
	// A machine with a fixed address, a name and a syslog target, per
	// family: what the installer needs before it can fetch its answer file.
	for _, id := range []string{"rocky-9.0", "ubuntu-24.04", "debian-12"} {
		in := testInput(id)
		in.Hostname, in.Domain, in.Interface = "db1", "example.org", ""
		in.Address = netip.MustParsePrefix("10.77.0.20/24")
		in.Gateway = netip.MustParseAddr("10.77.0.254")
		in.Syslog = netip.MustParseAddrPort("10.77.0.1:5514")
		m, err := InstallMenu(id, id, in)
		require.NoError(t, err, id)
		d, err := DialectFor(id)
		require.NoError(t, err)
		for _, k := range Kinds() {
			out = append(out, golden{name: id + "-static." + string(k), menu: m, kind: k,
				opt: Options{HTTPBase: testHTTP, GRUBDialect: d, PXELinuxUI: "menu.c32"}})
		}
	}
	// Everything a menu can hold.
	full := &Menu{
		Title:   "Lab menu",
		Timeout: -1,
		Default: "rescue",
		Entries: []Entry{
			{ID: "rescue", Title: "Rescue it's \"quoted\" & piped | <here>", Kernel: "/rescue/vmlinuz",
				Initrds: []string{"rescue/initrd.img", "rescue/extra.img"},
				Args: []Arg{Flag("quiet"), KV("label", "a b c"), KV("pat", "*.?[x]"), KV("dollar", "$HOME"),
					KV("semi", "a;b"), KV("sq", "it's"), KV("empty", ""), BootIF()},
				GRUBCommands:  []string{"insmod gzio"},
				PXELinuxLines: []string{"MENU INDENT 2"},
				IPXECommands:  []string{"echo booting rescue"},
			},
			{ID: "disk", Title: "Chainload the disk's EFI loader", Local: LocalChainload},
		},
	}
	for _, k := range []Kind{GRUB, PXELinux} {
		out = append(out, golden{name: "full." + string(k), menu: full, kind: k, opt: Options{GRUBDialect: GRUBEL7}})
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, g := range goldenCases(t) {
		t.Run(g.name, func(t *testing.T) {
			got, err := Render(g.menu, g.kind, g.opt)
			require.NoError(t, err)
			file := filepath.Join("testdata", "golden", g.name)
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
				require.NoError(t, os.WriteFile(file, got, 0o644))
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "run go test -update to create golden files")
			assert.Equal(t, string(want), string(got))
		})
	}
}

// grubScriptCheck runs GRUB's own parser on a file.
func grubScriptCheck(t *testing.T, tool, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, file).CombinedOutput()
	assert.NoError(t, err, "grub-script-check %s: %s", file, out)
}

func TestGoldenGRUBScriptCheck(t *testing.T) {
	tool, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check not installed (Debian package grub-common)")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.grub"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		grubScriptCheck(t, tool, f)
	}
	// The per-host snippet, alone and in front of a menu.
	snip, err := GRUBPerHostSnippet("")
	require.NoError(t, err)
	menu, err := os.ReadFile(filepath.Join("testdata", "golden", "debian-12-tftp.grub"))
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "grub.cfg")
	require.NoError(t, os.WriteFile(f, append([]byte(snip), menu...), 0o644))
	grubScriptCheck(t, tool, f)
}

// TestGRUBHostileValuesScriptCheck renders values made of GRUB syntax and
// checks both GRUB's parser and that each value reaches the linux command
// as exactly one word.
func TestGRUBHostileValuesScriptCheck(t *testing.T) {
	tool, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check not installed (Debian package grub-common)")
	}
	values := []string{"a;b", "a&b", "a|b", "a<b", "a>b", "$x", "${x}", "'", "''", `\`, `\'`, "{", "}",
		"a b", "#c", "*", "[", "`ls`", "$(ls)", "ds=nocloud-net;s=http://h/", "é ü 中文", "fi", "}\nmenuentry x {"}
	for _, v := range values {
		m := &Menu{Entries: []Entry{{ID: "x", Title: v, Kernel: "k", Args: []Arg{KV("v", v)}}}}
		b, err := Render(m, GRUB, Options{})
		if strings.ContainsAny(v, "\n") {
			require.ErrorIs(t, err, ErrUnsafe)
			continue
		}
		require.NoError(t, err, v)
		f := filepath.Join(t.TempDir(), "grub.cfg")
		require.NoError(t, os.WriteFile(f, b, 0o644))
		grubScriptCheck(t, tool, f)
		words := linuxWords(t, b)
		assert.Equal(t, []string{"linux", "/k", "v=" + v}, words, "value %q", v)
	}
}

// linuxWords returns the words of the single linux/linuxefi line of b.
func linuxWords(t testing.TB, b []byte) []string {
	t.Helper()
	var found []string
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "linux ") || strings.HasPrefix(l, "linuxefi ") {
			n++
			w, err := grubWords(l)
			require.NoError(t, err, "line %q", l)
			found = w
		}
	}
	require.Equal(t, 1, n, "want one linux line in:\n%s", b)
	return found
}

func TestNoUnquotedSemicolonOnLinuxLines(t *testing.T) {
	for _, g := range goldenCases(t) {
		if g.kind != GRUB {
			continue
		}
		b, err := Render(g.menu, GRUB, g.opt)
		require.NoError(t, err)
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if !strings.HasPrefix(l, "linux") {
				continue
			}
			// The BOOTIF word is the one intended expansion; mask it.
			words, err := grubWords(strings.Replace(l, grubBootIFArg, "BOOTIF", 1))
			assert.NoError(t, err, "%s: %s", g.name, l)
			for _, w := range words {
				if strings.Contains(w, ";") {
					assert.Contains(t, l, "'"+w+"'", "%s: %q must be single-quoted", g.name, w)
				}
			}
		}
	}
}

func TestUbuntuSemicolonQuotedInGRUB(t *testing.T) {
	m, err := InstallMenu("ubuntu-22.04", "", testInput("ubuntu-22.04"))
	require.NoError(t, err)
	b, err := Render(m, GRUB, Options{})
	require.NoError(t, err)
	assert.Contains(t, string(b), `'ds=nocloud-net;s=http://10.77.0.1:8080/answers/ubuntu-22.04/'`)
}

func TestRenderRejectsUnsafe(t *testing.T) {
	tests := []struct {
		name  string
		arg   Arg
		kinds []Kind // renderers that must refuse
		want  error
	}{
		{"newline", KV("a", "x\ninitrd /evil"), Kinds(), ErrUnsafe},
		{"carriage return", KV("a", "x\r"), Kinds(), ErrUnsafe},
		{"NUL", KV("a", "x\x00"), Kinds(), ErrUnsafe},
		{"tab", KV("a", "x\ty"), Kinds(), ErrUnsafe},
		{"double quote", KV("a", `x"y`), Kinds(), ErrUnsafe},
		{"ipxe expansion", KV("a", "${net0/ip}"), []Kind{IPXE}, ErrUnsafe},
		{"ipxe space", KV("a", "x || shell"), []Kind{IPXE}, ErrUnsafe},
		{"ipxe single quote", KV("a", "it's"), []Kind{IPXE}, ErrUnsafe},
		{"bad key", KV("a b", "x"), Kinds(), ErrInvalid},
		{"empty key", KV("", "x"), Kinds(), ErrInvalid},
		{"flag with space", Flag("a b"), Kinds(), ErrInvalid},
		{"flag with semicolon", Flag("a;reboot"), Kinds(), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Menu{Entries: []Entry{{ID: "x", Kernel: "k", Args: []Arg{tt.arg}}}}
			for _, k := range Kinds() {
				_, err := Render(m, k, Options{})
				refuse := false
				for _, r := range tt.kinds {
					refuse = refuse || r == k
				}
				if refuse {
					assert.ErrorIs(t, err, tt.want, "%s", k)
				} else {
					assert.NoError(t, err, "%s", k)
				}
			}
		})
	}
}

func TestMenuValidate(t *testing.T) {
	ok := Entry{ID: "a", Kernel: "k"}
	tests := []struct {
		name string
		menu *Menu
	}{
		{"nil", nil},
		{"empty", &Menu{}},
		{"duplicate id", &Menu{Entries: []Entry{ok, ok}}},
		{"unknown default", &Menu{Default: "b", Entries: []Entry{ok}}},
		{"no kernel", &Menu{Entries: []Entry{{ID: "a"}}}},
		{"id with space", &Menu{Entries: []Entry{{ID: "a b", Kernel: "k"}}}},
		{"id starting with dash", &Menu{Entries: []Entry{{ID: "-a", Kernel: "k"}}}},
		{"kernel with space", &Menu{Entries: []Entry{{ID: "a", Kernel: "k k"}}}},
		{"kernel escaping root", &Menu{Entries: []Entry{{ID: "a", Kernel: "../etc/passwd"}}}},
		{"initrd with comma", &Menu{Entries: []Entry{{ID: "a", Kernel: "k", Initrds: []string{"a,b"}}}}},
		{"local with kernel", &Menu{Entries: []Entry{{ID: "a", Kernel: "k", Local: LocalExit}}}},
		{"extra line with newline", &Menu{Entries: []Entry{{ID: "a", Kernel: "k", GRUBCommands: []string{"a\nb"}}}}},
		{"title with newline", &Menu{Title: "a\nb", Entries: []Entry{ok}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.menu.Validate()
			require.Error(t, err)
			assert.True(t, errorsIsAny(err, ErrInvalid, ErrUnsafe), "%v", err)
			for _, k := range Kinds() {
				_, err := Render(tt.menu, k, Options{})
				assert.Error(t, err)
			}
		})
	}
}

func TestHTTPBase(t *testing.T) {
	m := &Menu{Entries: []Entry{{ID: "a", Kernel: "os/vmlinuz", Initrds: []string{"os/initrd.img"}}}}
	tests := []struct {
		base    string
		dialect GRUBDialect
		grub    string // expected linux line
		ipxe    string // expected kernel line
	}{
		{"", GRUBEL9, "linux /os/vmlinuz", "kernel /os/vmlinuz initrd=initrd.img"},
		{"http://10.0.0.1/", GRUBEL9, "linux (http,10.0.0.1)/os/vmlinuz", "kernel http://10.0.0.1/os/vmlinuz initrd=initrd.img"},
		{"http://10.0.0.1:80/boot", GRUBUpstream, "linux (http,10.0.0.1)/boot/os/vmlinuz", "kernel http://10.0.0.1/boot/os/vmlinuz initrd=initrd.img"},
		{"http://10.0.0.1:8080/", GRUBEL8, "linuxefi (http,10.0.0.1:8080)/os/vmlinuz", "kernel http://10.0.0.1:8080/os/vmlinuz initrd=initrd.img"},
		// No port syntax in upstream 2.06: fall back to TFTP.
		{"http://10.0.0.1:8080/", GRUBUpstream, "linux /os/vmlinuz", "kernel http://10.0.0.1:8080/os/vmlinuz initrd=initrd.img"},
		// Debian's signed image loads the http module when it may.
		{"http://10.0.0.1/", GRUBDebian, `linux "${pxekit_http}"/os/vmlinuz`, "kernel http://10.0.0.1/os/vmlinuz initrd=initrd.img"},
		{"", GRUBDebian, "linux /os/vmlinuz", "kernel /os/vmlinuz initrd=initrd.img"},
		// Without the module on the server: TFTP.
		{"http://10.0.0.1/", GRUBDialect{Name: "debian", HTTPPort: true}, "linux /os/vmlinuz", "kernel http://10.0.0.1/os/vmlinuz initrd=initrd.img"},
		{"http://[fd77::1]:8080/", GRUBEL9, "linux (http,[fd77::1]:8080)/os/vmlinuz", "kernel http://[fd77::1]:8080/os/vmlinuz initrd=initrd.img"},
		{"http://[fd77::1]/", GRUBEL7, "linuxefi /os/vmlinuz", "kernel http://[fd77::1]/os/vmlinuz initrd=initrd.img"},
	}
	for _, tt := range tests {
		t.Run(tt.base+"/"+tt.dialect.Name, func(t *testing.T) {
			b, err := Render(m, GRUB, Options{HTTPBase: tt.base, GRUBDialect: tt.dialect})
			require.NoError(t, err)
			assert.Contains(t, string(b), "\t"+tt.grub+"\n")
			b, err = Render(m, IPXE, Options{HTTPBase: tt.base})
			require.NoError(t, err)
			assert.Contains(t, string(b), "\n"+tt.ipxe+"\n")
		})
	}
	for _, bad := range []string{"ftp://h/", "http://u:p@h/", "http://h/?q=1", "http:///x", "http://h/a b/", "http://h/../x/", "%"} {
		_, err := Render(m, IPXE, Options{HTTPBase: bad})
		assert.ErrorIs(t, err, ErrInvalid, bad)
	}
}

func TestTimeouts(t *testing.T) {
	m := func(d time.Duration) *Menu {
		return &Menu{Timeout: d, Entries: []Entry{{ID: "a", Kernel: "k"}, {ID: "b", Kernel: "k"}}, Default: "b"}
	}
	tests := []struct {
		d                  time.Duration
		grub, pxe, pxeMenu string
		ipxe               string
	}{
		{0, "set timeout=0\n", "PROMPT 0\n", "TIMEOUT 1\n", "goto b\n"},
		{-1, "set timeout=-1\n", "PROMPT 1\nTIMEOUT 0\n", "TIMEOUT 0\n", "choose --default b selected || goto b\n"},
		{1500 * time.Millisecond, "set timeout=2\n", "PROMPT 1\nTIMEOUT 15\n", "TIMEOUT 15\n", "choose --default b --timeout 1500 selected || goto b\n"},
	}
	for _, tt := range tests {
		render := func(k Kind, ui string) string {
			b, err := Render(m(tt.d), k, Options{PXELinuxUI: ui})
			require.NoError(t, err)
			return string(b)
		}
		assert.Contains(t, render(GRUB, ""), tt.grub)
		assert.Contains(t, render(GRUB, ""), "set default=b\n")
		assert.Contains(t, render(PXELinux, ""), tt.pxe)
		assert.Contains(t, render(PXELinux, "menu.c32"), tt.pxeMenu)
		assert.Contains(t, render(IPXE, ""), tt.ipxe)
	}
}

func TestIPXEDuplicateInitrdNames(t *testing.T) {
	m := &Menu{Entries: []Entry{{ID: "a", Kernel: "k", Initrds: []string{"x/initrd", "y/initrd"}}}}
	_, err := Render(m, IPXE, Options{})
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds() {
		got, err := ParseKind(" " + strings.ToUpper(string(k)))
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
	_, err := ParseKind("syslinux")
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = Render(&Menu{Entries: []Entry{{ID: "a", Kernel: "k"}}}, Kind("x"), Options{})
	assert.ErrorIs(t, err, ErrInvalid)
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
