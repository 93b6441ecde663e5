package chain

import (
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/osid"
)

func staticSpec() *answerfile.Spec {
	s := answerfile.DemoSpec(answerfile.SchemePlain)
	s.Hostname = "db1.example.org"
	s.Network = answerfile.Network{Mode: "static", Device: "eno1", Address: "192.0.2.10/24",
		Gateway: "192.0.2.1", DNS: []string{"192.0.2.53"}}
	return s
}

func argLine(e bootmenu.Entry) string {
	w := make([]string, len(e.Args))
	for i, a := range e.Args {
		w[i] = a.String()
	}
	return strings.Join(w, " ")
}

// The kernel line carries what each installer needs before it reads its
// answer file, taken from the spec: nobody patches kernel lines.
func TestPrepareCarriesSpecNetwork(t *testing.T) {
	ns := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	for _, tc := range []struct {
		os    string
		media Media
		want  []string
		not   []string
	}{
		{"debian-12", Media{Netboot: fstest.MapFS{"debian-installer/amd64/linux": {}}},
			[]string{"netcfg/get_hostname=db1", "netcfg/get_domain=example.org", "netcfg/disable_autoconfig=true",
				"netcfg/get_ipaddress=192.0.2.10", "netcfg/get_netmask=255.255.255.0", "netcfg/get_gateway=192.0.2.1",
				"netcfg/get_nameservers=192.0.2.53", "netcfg/confirm_static=true", "netcfg/no_default_route=true"},
			[]string{"10.0.0.1 ", "unassigned"}},
		{"rocky-9.0", Media{ISO: fstest.MapFS{"images/pxeboot/vmlinuz": {}}},
			[]string{"ip=192.0.2.10::192.0.2.1:255.255.255.0:db1:eno1:none", "nameserver=192.0.2.53"},
			[]string{"nameserver=10.0.0.1"}},
		{"ubuntu-24.04", Media{ISO: fstest.MapFS{"casper/vmlinuz": {}}, ISOFile: "/x.iso"},
			[]string{"ip=192.0.2.10::192.0.2.1:255.255.255.0:db1:eno1:off:192.0.2.53"},
			[]string{"ip=dhcp"}},
	} {
		p, err := Prepare("http://10.0.0.1:8080/", tc.media, Install{OSID: tc.os, Spec: staticSpec(), Nameservers: ns}, "answer/")
		require.NoError(t, err, tc.os)
		line := argLine(p.Entry) + " "
		for _, w := range tc.want {
			assert.Contains(t, line, w+" ", tc.os)
		}
		for _, w := range tc.not {
			assert.NotContains(t, line, w, tc.os)
		}
	}
}

func TestBootInputDHCPUsesServerDNS(t *testing.T) {
	s := answerfile.DemoSpec(answerfile.SchemePlain)
	s.Network.Domain = "lab.example"
	in, err := BootInput("debian-12", s, Install{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		Console: "ttyS0"}, "", "http://h/p.cfg")
	require.NoError(t, err)
	assert.Equal(t, "demo", in.Hostname)
	assert.Equal(t, "lab.example", in.Domain)
	assert.Equal(t, []string{"10.0.0.1"}, in.Nameservers)
	assert.False(t, in.Address.IsValid())
	assert.True(t, in.NoDefaultRoute)
	assert.Equal(t, "ttyS0", in.Console)

	in, err = BootInput("rocky-9.0", s, Install{}, "", "http://h/ks.cfg")
	require.NoError(t, err)
	assert.False(t, in.NoDefaultRoute, "only d-i asks about a missing router")

	_, err = BootInput("nope-1", s, Install{}, "", "http://h/x")
	require.Error(t, err)
}

// The same menu for the same spec, whichever program renders it.
func TestBootInputMatchesPreparedEntry(t *testing.T) {
	media := Media{Netboot: fstest.MapFS{"debian-installer/amd64/linux": {}}}
	spec := staticSpec()
	p, err := Prepare("http://10.0.0.1/", media, Install{OSID: "debian-12", Spec: spec, Console: "ttyS0"}, "answer/")
	require.NoError(t, err)
	in, err := BootInput("debian-12", spec, Install{Console: "ttyS0"}, "", p.AnswerURL)
	require.NoError(t, err)
	e, err := bootmenu.InstallEntry("debian-12", "boot", in)
	require.NoError(t, err)
	assert.Equal(t, p.Entry, e)
}

func TestPreferHostLoadersOnlyForDebian(t *testing.T) {
	assert.True(t, preferHostLoaders(string(osid.DebianDI)))
	assert.False(t, preferHostLoaders(string(osid.Subiquity)), "Ubuntu's shim and GRUB verify Canonical's kernel")
	assert.False(t, preferHostLoaders(string(osid.Anaconda)))
}
