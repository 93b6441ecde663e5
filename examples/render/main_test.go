package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func render(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRenderEveryKind(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-os", "rocky-9.0", "-kind", "grub", "-repo", "http://10.0.0.1/rocky9/", "-answer", "http://10.0.0.1/ks.cfg"}, "inst.ks=http://10.0.0.1/ks.cfg"},
		{[]string{"-os", "debian-12", "-kind", "pxelinux", "-answer", "http://10.0.0.1/preseed.cfg"}, "auto=true"},
		{[]string{"-os", "ubuntu-22.04", "-kind", "ipxe", "-repo", "http://10.0.0.1/u.iso", "-answer", "http://10.0.0.1/seed/", "-http", "http://10.0.0.1/"}, "#!ipxe"},
		{[]string{"-os", "centos-7.9", "-kind", "kickstart", "-layout", "lvm"}, "logvol"},
		{[]string{"-os", "ubuntu-24.04", "-kind", "autoinstall"}, "#cloud-config"},
		{[]string{"-os", "ubuntu-24.04", "-kind", "meta-data"}, "instance-id"},
		{[]string{"-os", "debian-11", "-kind", "preseed"}, "d-i partman-auto"},
	} {
		code, out, errs := render(t, tc.args...)
		require.Equal(t, 0, code, "%v: %s", tc.args, errs)
		assert.Contains(t, out, tc.want, "%v", tc.args)
	}
}

func TestRenderSpecErrorNamesFields(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("hostname: web01\nlayout:\n  scheme: lvm\n  lvm:\n    volumes:\n      - {mount: /, size: -5}\n"), 0o644))
	code, _, errs := render(t, "-os", "rocky-9.0", "-kind", "kickstart", "-spec", spec)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "layout.lvm.volumes[0].size")
}

func TestRenderUsageErrors(t *testing.T) {
	code, _, errs := render(t, "-os", "windows-11", "-kind", "grub")
	assert.Equal(t, 2, code)
	assert.True(t, strings.Contains(errs, "debian-12"), "lists the known IDs: %s", errs)
	code, _, errs = render(t, "-os", "debian-12", "-kind", "grub")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "-answer")
	code, _, _ = render(t, "-os", "rocky-9.0", "-kind", "preseed")
	assert.Equal(t, 1, code, "rocky reads a kickstart")
}

func TestRenderSaysHowLargeADisk(t *testing.T) {
	code, out, errs := render(t, "-os", "rocky-9.0", "-kind", "kickstart", "-layout", "lvm")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, errs, "the layout needs a disk of at least 7691 MiB")
	assert.NotContains(t, out, "needs a disk")
}

// The menus carry what the spec tells the installer before it reads its
// answer file, as the example servers' menus do.
func TestRenderMenuFromSpec(t *testing.T) {
	code, out, errs := render(t, "-os", "debian-12", "-kind", "grub", "-answer", "http://10.0.0.1/preseed.cfg")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "netcfg/get_hostname=demo", "the demonstration spec's hostname")
	assert.Contains(t, out, "netcfg/no_default_route=true")
	code, out, errs = render(t, "-os", "debian-12", "-kind", "ipxe", "-answer", "http://10.0.0.1/preseed.cfg", "-dns", "10.0.0.53")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "netcfg/get_nameservers=10.0.0.53", "-dns when the spec names none")
	code, _, errs = render(t, "-os", "debian-12", "-kind", "ipxe", "-answer", "http://10.0.0.1/preseed.cfg", "-dns", "ns1")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "-dns")

	spec := answerfile.DemoSpec("")
	spec.Hostname = "web01.lab.example"
	spec.Network = answerfile.Network{Mode: "static", Device: "eno1", Address: "192.0.2.10/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.53"}}
	for _, tc := range []struct {
		osID string
		k    bootmenu.Kind
		want []string
	}{
		{"debian-12", bootmenu.PXELinux, []string{"netcfg/get_hostname=web01", "netcfg/get_domain=lab.example", "netcfg/get_ipaddress=192.0.2.10", "netcfg/get_nameservers=192.0.2.53", "interface=auto"}},
		{"rocky-9.0", bootmenu.IPXE, []string{"ip=192.0.2.10::192.0.2.1:255.255.255.0:web01:eno1:none", "nameserver=192.0.2.53"}},
	} {
		out, err := renderMenu(tc.osID, tc.k, spec, menuFlags{answer: "http://10.0.0.1/a"})
		require.NoError(t, err, tc.osID)
		for _, w := range tc.want {
			assert.Contains(t, string(out), w, "%s %s", tc.osID, tc.k)
		}
	}

	// A menu one loader cannot carry is refused, as a server refuses it
	// at start: iPXE cannot pass d-i two nameservers.
	spec.Network.DNS = []string{"192.0.2.53", "192.0.2.54"}
	_, err := renderMenu("debian-12", bootmenu.GRUB, spec, menuFlags{answer: "http://10.0.0.1/a"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ipxe")
}
