package bootmenu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGRUBHTTPInsmod covers menus for a GRUB that loads the http module at
// boot: one preamble that tests the (http,...) device and names the HTTP
// root, kernel and initrd paths that give today's TFTP path when the
// module did not load, and no preamble where HTTP cannot be used.
func TestGRUBHTTPInsmod(t *testing.T) {
	tool, _ := exec.LookPath("grub-script-check")
	kernelMenu := &Menu{Entries: []Entry{
		{ID: "a", Kernel: "os/vmlinuz", Initrds: []string{"os/initrd.img", "/os/x~1.img"}},
		{ID: "local", Local: LocalChainload},
	}}
	tests := []struct {
		name     string
		base     string
		dialect  GRUBDialect
		menu     *Menu
		device   string // the device tested; "" means no preamble
		preamble string // the HTTP root
		linux    string // the expected linux line
		initrd   string
	}{
		{"port", "http://10.0.0.1:8080/", GRUBDebian, kernelMenu, "'(http,10.0.0.1:8080)/'", "'(http,10.0.0.1:8080)'",
			`linux "${pxekit_http}"/os/vmlinuz`, `initrd "${pxekit_http}"/os/initrd.img "${pxekit_http}"'/os/x~1.img'`},
		{"port 80 and a path", "http://boot.example.org:80/pxe/", GRUBDebian, kernelMenu, "'(http,boot.example.org)/'", "'(http,boot.example.org)/pxe'",
			`linux "${pxekit_http}"/os/vmlinuz`, `initrd "${pxekit_http}"/os/initrd.img "${pxekit_http}"'/os/x~1.img'`},
		{"ipv6", "http://[fd77::1]:8080/", GRUBDebian, kernelMenu, "'(http,[fd77::1]:8080)/'", "'(http,[fd77::1]:8080)'",
			`linux "${pxekit_http}"/os/vmlinuz`, `initrd "${pxekit_http}"/os/initrd.img "${pxekit_http}"'/os/x~1.img'`},
		{"no HTTP base", "", GRUBDebian, kernelMenu, "", "", "linux /os/vmlinuz", `initrd /os/initrd.img '/os/x~1.img'`},
		{"port not parsed", "http://10.0.0.1:8080/", GRUBDialect{HTTPInsmod: true}, kernelMenu, "", "", "linux /os/vmlinuz", `initrd /os/initrd.img '/os/x~1.img'`},
		{"built-in http wins", "http://10.0.0.1:8080/", GRUBDialect{HTTP: true, HTTPPort: true, HTTPInsmod: true}, kernelMenu, "", "",
			"linux (http,10.0.0.1:8080)/os/vmlinuz", `initrd (http,10.0.0.1:8080)/os/initrd.img (http,10.0.0.1:8080)'/os/x~1.img'`},
		{"local only", "http://10.0.0.1:8080/", GRUBDebian, &Menu{Entries: []Entry{{ID: "local", Local: LocalExit}}}, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Render(tt.menu, GRUB, Options{HTTPBase: tt.base, GRUBDialect: tt.dialect})
			require.NoError(t, err)
			s := string(b)
			if tt.device == "" {
				assert.NotContains(t, s, "test -d")
				assert.NotContains(t, s, grubHTTPVar)
			} else {
				want := "\nset pxekit_http=\nif test -d " + tt.device + "; then\n\tset pxekit_http=" + tt.preamble + "\nfi\n\nmenuentry "
				assert.Equal(t, 1, strings.Count(s, "test -d"), "one preamble")
				assert.Contains(t, s, want)
				assert.Less(t, strings.Index(s, "test -d"), strings.Index(s, "menuentry"), "before the entries")
				// GRUB 2.06's insmod reports success even when the module
				// was refused: it cannot be the test (seen under Secure Boot).
				assert.NotContains(t, s, "insmod http")
				// The value GRUB assigns, unquoted, ends without a slash:
				// the paths bring their own.
				w, err := grubWords("set pxekit_http=" + tt.preamble)
				require.NoError(t, err)
				assert.False(t, strings.HasSuffix(w[1], "/"), w[1])
			}
			if tt.linux != "" {
				assert.Contains(t, s, "\t"+tt.linux+"\n", "linux line")
			}
			if tt.initrd != "" {
				assert.Contains(t, s, "\t"+tt.initrd+"\n")
			}
			if tool != "" {
				f := filepath.Join(t.TempDir(), "grub.cfg")
				require.NoError(t, os.WriteFile(f, b, 0o644))
				grubScriptCheck(t, tool, f)
			}
		})
	}
}

// TestGRUBHTTPInsmodPaths: with the variable empty (the module refused) the
// words are today's TFTP paths; with it set, the HTTP ones.
func TestGRUBHTTPInsmodPaths(t *testing.T) {
	m := &Menu{Entries: []Entry{{ID: "a", Kernel: "d/linux", Initrds: []string{"d/initrd.gz"}, Args: []Arg{KV("url", "http://h/p")}}}}
	b, err := Render(m, GRUB, Options{HTTPBase: "http://10.0.0.1:8080/boot/", GRUBDialect: GRUBDebian})
	require.NoError(t, err)
	words := linuxWords(t, b)
	require.Equal(t, []string{"linux", "${pxekit_http}/d/linux", "url=http://h/p"}, words)
	for val, want := range map[string]string{"": "/d/linux", "(http,10.0.0.1:8080)/boot": "(http,10.0.0.1:8080)/boot/d/linux"} {
		assert.Equal(t, want, strings.ReplaceAll(words[1], "${pxekit_http}", val))
	}
}
