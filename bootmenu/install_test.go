package bootmenu

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pxekit/pxekit/internal/osid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func words(args []Arg) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func TestInstallArgs(t *testing.T) {
	const r, a = "http://10.0.0.1/tree/", "http://10.0.0.1/answers/x"
	tests := []struct {
		os   string
		in   InstallInput
		want string
	}{
		{"centos-7.9", InstallInput{RepoURL: r, AnswerURL: a},
			"inst.repo=http://10.0.0.1/tree/ inst.ks=http://10.0.0.1/answers/x BOOTIF=01-<boot-mac>"},
		{"rocky-9.0", InstallInput{RepoURL: r, AnswerURL: a, Stage2URL: "http://10.0.0.1/s2/", Console: "ttyS0,115200n8", NoBootIF: true},
			"inst.repo=http://10.0.0.1/tree/ inst.stage2=http://10.0.0.1/s2/ inst.ks=http://10.0.0.1/answers/x console=ttyS0,115200n8"},
		{"alma-8.5", InstallInput{RepoURL: r, AnswerURL: a, NoBootIF: true, InstallerNet: InstallerNet{Offline: true}},
			"inst.repo=http://10.0.0.1/tree/ inst.ks=http://10.0.0.1/answers/x inst.geoloc=0"},
		{"debian-12", InstallInput{AnswerURL: "http://h/p.cfg", NoBootIF: true, InstallerNet: InstallerNet{Offline: true}},
			"auto=true priority=critical url=http://h/p.cfg interface=auto debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us netcfg/get_hostname=unassigned-hostname netcfg/get_domain=unassigned-domain"},
		{"kylin-v10", InstallInput{AnswerURL: a, BootMAC: net.HardwareAddr{0x52, 0x54, 0, 0xe2, 0xe0, 1}},
			"inst.ks=http://10.0.0.1/answers/x BOOTIF=01-52-54-00-e2-e0-01"},
		{"ubuntu-20.04", InstallInput{RepoURL: "http://h/u.iso", AnswerURL: "http://h/seed"},
			"root=/dev/ram0 ramdisk_size=1500000 ip=dhcp url=http://h/u.iso autoinstall ds=nocloud-net;s=http://h/seed/ cloud-config-url=/dev/null BOOTIF=01-<boot-mac>"},
		{"ubuntu-22.04", InstallInput{RepoURL: "http://h/u.iso", AnswerURL: "http://h/seed/", NoBootIF: true},
			"ip=dhcp url=http://h/u.iso autoinstall ds=nocloud-net;s=http://h/seed/ cloud-config-url=/dev/null"},
		{"ubuntu-24.04", InstallInput{RepoURL: "http://h/u.iso", AnswerURL: "http://h/seed/", NoBootIF: true},
			"ip=dhcp url=http://h/u.iso autoinstall ds=nocloud;s=http://h/seed/ cloud-config-url=/dev/null"},
		{"debian-12", InstallInput{
			AnswerURL:    "http://h/p.cfg",
			NoBootIF:     true,
			Locale:       "de_DE.UTF-8",
			Keymap:       "de",
			Extra:        []Arg{Flag("quiet")},
			InstallerNet: InstallerNet{Hostname: "web1", Domain: "lab", Nameservers: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}},
		},
			`auto=true priority=critical url=http://h/p.cfg interface=auto debian-installer/locale=de_DE.UTF-8 keyboard-configuration/xkb-keymap=de netcfg/get_hostname=web1 netcfg/get_domain=lab netcfg/get_nameservers="10.0.0.1 10.0.0.2" quiet`},
		{"debian-11", InstallInput{AnswerURL: "http://h/p.cfg", RepoURL: "http://h:8080/debian", NoBootIF: true},
			"auto=true priority=critical url=http://h/p.cfg interface=auto debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us netcfg/get_hostname=unassigned-hostname netcfg/get_domain=unassigned-domain mirror/country=manual mirror/protocol=http mirror/http/hostname=h:8080 mirror/http/directory=/debian mirror/http/proxy="},
		{"debian-12", InstallInput{
			AnswerURL:    "http://h/p.cfg",
			NoBootIF:     true,
			Syslog:       netip.MustParseAddrPort("192.0.2.2:5514"),
			InstallerNet: InstallerNet{Hostname: "db1", Domain: "example.org", Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"), Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}},
		},
			"auto=true priority=critical url=http://h/p.cfg interface=auto debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us netcfg/get_hostname=db1 netcfg/get_domain=example.org" +
				" netcfg/disable_autoconfig=true netcfg/get_ipaddress=192.0.2.10 netcfg/get_netmask=255.255.255.0 netcfg/get_gateway=192.0.2.1 netcfg/get_nameservers=192.0.2.53 netcfg/confirm_static=true log_host=192.0.2.2 log_port=5514"},
		{"debian-10", InstallInput{AnswerURL: "http://h/p.cfg", NoBootIF: true, InstallerNet: InstallerNet{Address: netip.MustParsePrefix("10.9.0.7/16")}},
			"auto=true priority=critical url=http://h/p.cfg interface=auto debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us netcfg/get_hostname=unassigned-hostname netcfg/get_domain=unassigned-domain" +
				" netcfg/disable_autoconfig=true netcfg/get_ipaddress=10.9.0.7 netcfg/get_netmask=255.255.0.0 netcfg/get_gateway=none netcfg/confirm_static=true netcfg/no_default_route=true"},
		{"debian-12", InstallInput{AnswerURL: "http://h/p.cfg", NoBootIF: true, InstallerNet: InstallerNet{NoDefaultRoute: true}},
			"auto=true priority=critical url=http://h/p.cfg interface=auto debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us netcfg/get_hostname=unassigned-hostname netcfg/get_domain=unassigned-domain netcfg/no_default_route=true"},
		{"rocky-9.0", InstallInput{
			RepoURL:      r,
			AnswerURL:    a,
			NoBootIF:     true,
			Syslog:       netip.MustParseAddrPort("192.0.2.2:514"),
			InstallerNet: InstallerNet{Hostname: "db1", Interface: "eno1", Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"), Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")}},
		},
			"inst.repo=http://10.0.0.1/tree/ inst.ks=http://10.0.0.1/answers/x ip=192.0.2.10::192.0.2.1:255.255.255.0:db1:eno1:none nameserver=192.0.2.53 nameserver=192.0.2.54 inst.syslog=192.0.2.2:514"},
		{"centos-7.9", InstallInput{AnswerURL: a, NoBootIF: true, InstallerNet: InstallerNet{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}},
			"inst.ks=http://10.0.0.1/answers/x nameserver=10.0.0.1"},
		{"ubuntu-22.04", InstallInput{
			RepoURL:      "http://h/u.iso",
			AnswerURL:    "http://h/seed/",
			NoBootIF:     true,
			Syslog:       netip.MustParseAddrPort("192.0.2.2:514"),
			InstallerNet: InstallerNet{Hostname: "u1", Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"), Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54"), netip.MustParseAddr("192.0.2.55")}},
		},
			"ip=192.0.2.10::192.0.2.1:255.255.255.0:u1::off:192.0.2.53:192.0.2.54 url=http://h/u.iso autoinstall ds=nocloud-net;s=http://h/seed/ cloud-config-url=/dev/null"},
	}
	for _, tt := range tests {
		t.Run(tt.os, func(t *testing.T) {
			args, err := InstallArgs(tt.os, tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, words(args))
		})
	}
}

func TestInstallArgsEveryOS(t *testing.T) {
	for _, info := range osid.All() {
		in := InstallInput{RepoURL: "http://h/r", AnswerURL: "http://h/a"}
		m, err := InstallMenu(info.ID, info.ID, in)
		require.NoError(t, err, info.ID)
		_, err = DialectFor(info.ID)
		require.NoError(t, err)
		for _, k := range Kinds() {
			_, err := Render(m, k, Options{HTTPBase: "http://h/"})
			require.NoError(t, err, "%s %s", info.ID, k)
		}
	}
}

func TestInstallArgsErrors(t *testing.T) {
	good := InstallInput{RepoURL: "http://h/r", AnswerURL: "http://h/a"}
	_, err := InstallArgs("windows-11", good)
	assert.ErrorIs(t, err, ErrUnknownOS)
	_, err = DialectFor("windows-11")
	assert.ErrorIs(t, err, ErrUnknownOS)
	_, _, err = BootFiles("windows-11")
	assert.ErrorIs(t, err, ErrUnknownOS)
	_, err = InstallMenu("windows-11", "", good)
	assert.ErrorIs(t, err, ErrUnknownOS)
	for name, in := range map[string]InstallInput{
		"no answer":       {RepoURL: "http://h/r"},
		"relative answer": {AnswerURL: "a.cfg"},
		"bad repo":        {AnswerURL: "http://h/a", RepoURL: "file:///x"},
		"bad stage2":      {AnswerURL: "http://h/a", Stage2URL: "h/x"},
		"bad mac":         {AnswerURL: "http://h/a", BootMAC: net.HardwareAddr{1, 2}},
		"bad nameserver":  {AnswerURL: "http://h/a", InstallerNet: InstallerNet{Nameservers: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}},
	} {
		os := "rocky-9.0"
		if name == "bad nameserver" {
			os = "debian-12"
		}
		_, err := InstallArgs(os, in)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err = InstallArgs("ubuntu-22.04", InstallInput{AnswerURL: "http://h/a"})
	assert.ErrorIs(t, err, ErrInvalid, "ubuntu needs the ISO URL")
	_, err = InstallArgs("rocky-9.0", InstallInput{AnswerURL: "http://h/a", Extra: []Arg{KV("x", "a\nb")}})
	assert.ErrorIs(t, err, ErrUnsafe)
}

func TestDialectFor(t *testing.T) {
	tests := map[string]GRUBDialect{
		"centos-7.9": GRUBEL7, "anolis-7.9": GRUBEL7, "alma-8.5": GRUBEL8, "rocky-9.0": GRUBEL9,
		"openeuler-22.03": GRUBEL9, "kylin-v10": GRUBKylinUOS, "uos-20": GRUBKylinUOS,
		"ubuntu-24.04": GRUBDebian, "debian-12": GRUBDebian,
	}
	for id, want := range tests {
		got, err := DialectFor(id)
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
	}
}

func TestInstallArgsRejectsBadNetwork(t *testing.T) {
	base := InstallInput{AnswerURL: "http://h/a", RepoURL: "http://h/u.iso"}
	for name, mod := range map[string]func(*InstallInput){
		"fqdn hostname":   func(in *InstallInput) { in.Hostname = "a.example.org" },
		"colon hostname":  func(in *InstallInput) { in.Hostname = "a:b" },
		"space domain":    func(in *InstallInput) { in.Domain = "a b" },
		"bad nameserver":  func(in *InstallInput) { in.Nameservers = []netip.Addr{{}} },
		"ipv6 static":     func(in *InstallInput) { in.Address = netip.MustParsePrefix("2001:db8::5/64") },
		"gateway alone":   func(in *InstallInput) { in.Gateway = netip.MustParseAddr("192.0.2.1") },
		"interface alone": func(in *InstallInput) { in.Interface = "eth0" },
		"v6 gw, v4 addr": func(in *InstallInput) {
			in.Address = netip.MustParsePrefix("192.0.2.5/24")
			in.Gateway = netip.MustParseAddr("2001:db8::1")
		},
		"syslog no port":  func(in *InstallInput) { in.Syslog = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), 0) },
		"interface colon": func(in *InstallInput) { in.Address = netip.MustParsePrefix("192.0.2.5/24"); in.Interface = "eth0:1" },
	} {
		for _, os := range []string{"debian-12", "rocky-9.0", "ubuntu-24.04"} {
			in := base
			mod(&in)
			_, err := InstallArgs(os, in)
			require.ErrorIs(t, err, ErrInvalid, "%s on %s", name, os)
		}
	}
}
