package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// debianNetinst is the metadata of a Debian 12 netinst image, enough for
// detection; boot files are placeholders.
var debianNetinst = map[string]string{
	".disk/info":             `Debian GNU/Linux 12.7.0 "Bookworm" - Official amd64 NETINST with firmware 20240831-10:40`,
	"install.amd/vmlinuz":    "kernel",
	"install.amd/initrd.gz":  "initrd",
	"dists/bookworm/Release": "Origin: Debian\nLabel: Debian\nSuite: stable\nVersion: 12.7\nCodename: bookworm\nArchitectures: amd64\nComponents: main\n",
	"EFI/boot/bootx64.efi":   "shim",
	"EFI/boot/grubx64.efi":   "grub",
	"isolinux/isolinux.cfg":  "default vesamenu.c32\n",
}

func buildISO(t *testing.T, files map[string]string) string {
	t.Helper()
	xorriso, err := exec.LookPath("xorriso")
	if err != nil {
		t.Skip("isoinfo: skipped: xorriso not installed (Debian package xorriso)")
	}
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	iso := filepath.Join(t.TempDir(), "test.iso")
	out, err := exec.Command(xorriso, "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "DEBIAN_12", "-o", iso, root).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return iso
}

func isoinfo(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestJSONContract(t *testing.T) {
	iso := buildISO(t, debianNetinst)
	code, out, errs := isoinfo("-json", iso)
	require.Equal(t, 0, code, errs)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	for _, key := range []string{"family", "name", "version", "arch", "kernel", "initrd", "warnings"} {
		assert.Contains(t, got, key)
	}
	assert.Equal(t, "debian-installer", got["family"])
	assert.Equal(t, "debian-12", got["osid"])
	assert.Equal(t, "install.amd/vmlinuz", got["kernel"])
	assert.NotEmpty(t, got["warnings"], "Debian's CD initrd cannot netboot: warned")
}

func TestTextAndNetboot(t *testing.T) {
	iso := buildISO(t, debianNetinst)
	nb := "/usr/lib/debian-installer/images/12/amd64/text"
	if _, err := os.Stat(nb); err != nil {
		t.Skip("isoinfo: skipped: Debian package debian-installer-12-netboot-amd64 not installed")
	}
	code, out, errs := isoinfo("-netboot", nb, iso)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "Debian GNU/Linux 12.7.0")
	assert.Contains(t, out, "debian-installer/amd64/linux")
}

func TestUnknownAndBrokenImages(t *testing.T) {
	iso := buildISO(t, map[string]string{"README.txt": "not an installer"})
	code, _, errs := isoinfo("-json", iso)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "unknown distribution")
	assert.Contains(t, errs, "README.txt", "names what was found")

	junk := filepath.Join(t.TempDir(), "junk.iso")
	require.NoError(t, os.WriteFile(junk, bytes.Repeat([]byte{0xA5}, 64<<10), 0o644))
	code, _, errs = isoinfo(junk)
	assert.Equal(t, 1, code)
	assert.True(t, strings.Contains(errs, "junk.iso"), errs)

	code, _, _ = isoinfo()
	assert.Equal(t, 2, code)
}
