package main

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/isosrc"
)

// TestServedNamesAndSteps: one tree answers over TFTP and HTTP alike —
// generated answer files and menus, the netboot tree under boot/, the
// boot loaders, -root — and each name that marks a client step logs the
// line the firmware tests look for.
func TestServedNamesAndSteps(t *testing.T) {
	m := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", fakeNetboot(t), "-root", lab(t), "-demo-password")
	names := []struct {
		name, stage string // stage "": served, no step
	}{
		{"answer/preseed.cfg", "answer"},
		{"grub/grub.cfg", "menu"},
		{"pxelinux.cfg/default", "menu"},
		{"boot.ipxe", "menu"},
		{"boot/debian-installer/amd64/linux", "kernel"},
		{"boot/debian-installer/amd64/initrd.gz", "initrd"},
		{"hello.txt", ""},
	}
	for _, n := range names {
		tftpBody, err := tftpGet(m.tftp, n.name)
		require.NoError(t, err, "TFTP %s", n.name)
		code, httpBody := get(t, m.http+"/"+n.name)
		require.Equal(t, http.StatusOK, code, "HTTP %s", n.name)
		assert.Equal(t, tftpBody, httpBody, "%s: the same content over TFTP and HTTP", n.name)
	}
	_, err := tftpGet(m.tftp, "no/such/file")
	assert.Error(t, err)
	code, _ := get(t, m.http+"/no/such/file")
	assert.Equal(t, http.StatusNotFound, code)

	// A boot loader the host has is served and is a step; a .c32 module
	// is served and is not.
	for _, l := range []string{bootmenu.LoaderGRUB, bootmenu.LoaderPXELinux} {
		if _, err := tftpGet(m.tftp, l); err == nil {
			names = append(names, struct{ name, stage string }{l, "bootloader"})
		}
	}
	if _, err := tftpGet(m.tftp, "ldlinux.c32"); err == nil {
		names = append(names, struct{ name, stage string }{"ldlinux.c32", ""})
	}

	// A TFTP transfer ends (and is logged) when its last ACK arrives,
	// which may be after the client has returned.
	logged := func(re *regexp.Regexp) bool {
		return assert.Eventually(t, func() bool { return re.MatchString(m.stderr.String()) }, 5*time.Second, 10*time.Millisecond, "log lacks %s", re)
	}
	for _, n := range names {
		for _, proto := range []string{"tftp", "http"} {
			if n.stage == "" || (n.stage == "bootloader" && proto == "http") {
				continue // no step; a loader was fetched over TFTP only
			}
			logged(regexp.MustCompile(`"client step" stage=` + n.stage + ` mac=unknown ip=127\.0\.0\.1 .*proto=` + proto + ` detail=` + regexp.QuoteMeta(n.name) + `\n`))
		}
	}
	logged(regexp.MustCompile(`stage=kernel mac=unknown ip=127\.0\.0\.1 bytes=\d+ took=\S+ proto=tftp detail=`))
	logged(regexp.MustCompile(`stage=kernel mac=unknown ip=127\.0\.0\.1 bytes=\d+ took=\S+ proto=http detail=`))
	// What a client did not get is no step, and says why.
	logged(regexp.MustCompile(`"http request not served" client=127\.0\.0\.1:\d+ file=no/such/file status=404 `))
	logs := m.stderr.String()
	for _, n := range names {
		if n.stage == "" {
			assert.NotRegexp(t, regexp.MustCompile(`"client step" stage=\S+ .* detail=`+regexp.QuoteMeta(n.name)+`\n`), logs, "%s is no step", n.name)
		}
	}
}

// By default Debian's GRUB loads the host's http module when one matches;
// -grub-http=false keeps it on TFTP: its menu asks for no http module.
func TestGRUBHTTPFlag(t *testing.T) {
	off := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", fakeNetboot(t), "-demo-password", "-grub-http=false")
	cfg, err := tftpGet(off.tftp, "grub/grub.cfg")
	require.NoError(t, err)
	assert.NotContains(t, string(cfg), "pxekit_http")
	assert.Contains(t, string(cfg), "\tlinux /boot/debian-installer/amd64/linux ")
	on := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", fakeNetboot(t), "-demo-password")
	cfg, err = tftpGet(on.tftp, "grub/grub.cfg")
	require.NoError(t, err)
	if _, err := tftpGet(on.tftp, bootmenu.LoaderGRUBHTTPMod); err == nil {
		assert.Contains(t, string(cfg), "pxekit_http", "the host serves a matching http module")
	} else {
		assert.NotContains(t, string(cfg), "pxekit_http", "no module served")
	}
}
