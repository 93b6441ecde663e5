package bootmenu

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallEntryKernelOverride(t *testing.T) {
	a := "http://h/a"
	tests := []struct {
		name, os, dir string
		kernel        string
		initrds       []string
		wantK         string
		wantI         []string
	}{
		{"table, anaconda", "rocky-9.0", "boot", "", nil, "boot/images/pxeboot/vmlinuz", []string{"boot/images/pxeboot/initrd.img"}},
		{"table, root dir", "ubuntu-24.04", "", "", nil, "casper/vmlinuz", []string{"casper/initrd"}},
		{"table, debian", "debian-12", "/profiles/d12/boot/", "", nil, "profiles/d12/boot/debian-installer/amd64/linux", []string{"profiles/d12/boot/debian-installer/amd64/initrd.gz"}},
		{"both", "debian-12", "boot", "install.amd/vmlinuz", []string{"install.amd/initrd.gz"}, "boot/install.amd/vmlinuz", []string{"boot/install.amd/initrd.gz"}},
		{"kernel only", "ubuntu-22.04", "boot", "casper/hwe-vmlinuz", nil, "boot/casper/hwe-vmlinuz", []string{"boot/casper/initrd"}},
		{"initrds only", "rocky-9.0", "", "", []string{"images/pxeboot/initrd.img", "extra/drivers.img"}, "images/pxeboot/vmlinuz", []string{"images/pxeboot/initrd.img", "extra/drivers.img"}},
		{"empty initrds is the table", "rocky-9.0", "", "", []string{}, "images/pxeboot/vmlinuz", []string{"images/pxeboot/initrd.img"}},
		{"cleaned", "rocky-9.0", "boot", "./images//pxeboot/vmlinuz", nil, "boot/images/pxeboot/vmlinuz", []string{"boot/images/pxeboot/initrd.img"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := InstallInput{AnswerURL: a, RepoURL: "http://h/u.iso", Kernel: tt.kernel, Initrds: tt.initrds}
			e, err := InstallEntry(tt.os, tt.dir, in)
			require.NoError(t, err)
			assert.Equal(t, tt.wantK, e.Kernel)
			assert.Equal(t, tt.wantI, e.Initrds)
			want, err := InstallArgs(tt.os, in)
			require.NoError(t, err)
			assert.Equal(t, want, e.Args, "the overrides do not touch the arguments")
		})
	}
}

func TestInstallEntryRejectsBadOverride(t *testing.T) {
	for name, in := range map[string]InstallInput{
		"absolute kernel":  {Kernel: "/images/pxeboot/vmlinuz"},
		"kernel escapes":   {Kernel: "../other/vmlinuz"},
		"kernel escapes 2": {Kernel: "images/../../vmlinuz"},
		"kernel is dir":    {Kernel: "."},
		"kernel space":     {Kernel: "images/vm linuz"},
		"kernel newline":   {Kernel: "vmlinuz\ninitrd x"},
		"empty initrd":     {Initrds: []string{"initrd.img", ""}},
		"initrd escapes":   {Initrds: []string{"../../etc/shadow"}},
		"absolute initrd":  {Initrds: []string{"/initrd.img"}},
		"initrd quote":     {Initrds: []string{`a"b`}},
	} {
		in.AnswerURL = "http://h/a"
		_, err := InstallEntry("rocky-9.0", "boot", in)
		assert.ErrorIs(t, err, ErrInvalid, name)
		_, err = InstallMenu("rocky-9.0", "boot", in)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
}

func TestNameserverFamilies(t *testing.T) {
	ns := []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("192.0.2.53"),
		netip.MustParseAddr("192.0.2.54"), netip.MustParseAddr("192.0.2.55")}
	in := InstallInput{
		AnswerURL:    "http://h/a",
		RepoURL:      "http://h/u.iso",
		InstallerNet: InstallerNet{Nameservers: ns, Address: netip.MustParsePrefix("192.0.2.5/24"), Gateway: netip.MustParseAddr("192.0.2.1")},
	}
	args := func(os string) map[string][]string {
		got, err := InstallArgs(os, in)
		require.NoError(t, err, os)
		m := map[string][]string{}
		for _, a := range got {
			m[a.Key] = append(m[a.Key], a.Value)
		}
		return m
	}
	// casper's ip= is colon-separated: only IPv4 fits, two at most.
	assert.Equal(t, []string{"192.0.2.5::192.0.2.1:255.255.255.0:::off:192.0.2.53:192.0.2.54"}, args("ubuntu-24.04")["ip"])
	assert.Equal(t, []string{"2001:db8::53 192.0.2.53 192.0.2.54 192.0.2.55"}, args("debian-12")["netcfg/get_nameservers"])
	assert.Equal(t, []string{"2001:db8::53", "192.0.2.53", "192.0.2.54", "192.0.2.55"}, args("rocky-9.0")["nameserver"])
}

func TestMenuKind(t *testing.T) {
	tests := map[string]Kind{
		"grub.cfg":                           GRUB,
		"grub/grub.cfg":                      GRUB,
		"/boot/grub/grub.cfg":                GRUB,
		"grub/grub.cfg-01-52-54-00-12-34-56": GRUB,
		"grub/grub.cfg-0A4D008D":             GRUB,
		"profiles/rocky9/grub.cfg":           GRUB,
		"pxelinux.cfg/default":               PXELinux,
		"pxelinux.cfg/01-52-54-00-12-34-56":  PXELinux,
		"/pxelinux.cfg/0A4D008D":             PXELinux,
		"boot.ipxe":                          IPXE,
		"/profiles/rocky9/boot.ipxe":         IPXE,
		"grubx64.efi":                        "",
		"grub.cfg.bak/x":                     "",
		"mygrub.cfg":                         "",
		"pxelinux.cfg":                       "",
		"pxelinux.cfg/":                      "",
		"pxelinux.0":                         "",
		"boot.ipxe.sig":                      "",
		"":                                   "",
		"images/pxeboot/vmlinuz":             "",
	}
	for name, want := range tests {
		got, ok := MenuKind(name)
		assert.Equal(t, want != "", ok, name)
		assert.Equal(t, want, got, name)
	}
}

func TestRenderAll(t *testing.T) {
	m, err := InstallMenu("rocky-9.0", "boot", InstallInput{AnswerURL: "http://10.0.0.1:8080/ks.cfg", RepoURL: "http://10.0.0.1:8080/iso/"})
	require.NoError(t, err)
	opt := Options{HTTPBase: "http://10.0.0.1:8080/", GRUBDialect: GRUBEL9, PXELinuxUI: "menu.c32"}
	all, err := RenderAll(m, opt)
	require.NoError(t, err)
	require.Len(t, all, len(Kinds()))
	for _, k := range Kinds() {
		want, err := Render(m, k, opt)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(all[k]), k)
	}

	// iPXE alone cannot carry "${": the error names it and wraps ErrUnsafe.
	m.Entries[0].Args = append(m.Entries[0].Args, KV("x", "${net0/ip}"))
	_, err = Render(m, GRUB, opt)
	require.NoError(t, err)
	all, err = RenderAll(m, opt)
	assert.ErrorIs(t, err, ErrUnsafe)
	assert.ErrorContains(t, err, "ipxe menu")
	assert.Nil(t, all)

	_, err = RenderAll(nil, opt)
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestOSTable(t *testing.T) {
	all := OSes()
	require.NotEmpty(t, all)
	for _, os := range all {
		got, ok := LookupOS(" " + os.ID + " ")
		require.True(t, ok, os.ID)
		assert.Equal(t, os, got)
		_, _, err := BootFiles(os.ID)
		assert.NoError(t, err, os.ID)
		_, err = DialectFor(os.ID)
		assert.NoError(t, err, os.ID)
	}
	all[0].ID = "changed"
	_, ok := LookupOS("changed")
	assert.False(t, ok, "OSes returns a copy")
	_, ok = LookupOS("windows-11")
	assert.False(t, ok)
}
