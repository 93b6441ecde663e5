package answerfile

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuild(t *testing.T) {
	const base = "http://10.0.0.1:8080/answer/"
	static := func(s *Spec) {
		s.Network = Network{Mode: "static", Device: "eno1", Address: "192.0.2.10/24", Gateway: "192.0.2.1",
			DNS: []string{"192.0.2.53", "192.0.2.54"}, Domain: "lab.example"}
	}
	fqdn := func(s *Spec) { s.Hostname = "web01.dc1.example.org"; s.Network.Domain = "ignored.example" }
	domain := func(s *Spec) { s.Hostname = "web01"; s.Network.Domain = "lab.example" }
	staticNet := InstallerNet{Hostname: "demo", Domain: "lab.example",
		Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1"),
		Nameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")}}
	with := func(n InstallerNet, edit func(*InstallerNet)) InstallerNet { edit(&n); return n }
	for _, tc := range []struct {
		name  string
		os    string
		edit  func(*Spec)
		kind  Kind
		files []string
		url   string
		net   InstallerNet
	}{
		{"kickstart dhcp", "rocky-9.0", nil, KindKickstart, []string{"ks.cfg"}, base + "ks.cfg",
			InstallerNet{Hostname: "demo"}},
		{"kickstart static", "alma-8.5", static, KindKickstart, []string{"ks.cfg"}, base + "ks.cfg",
			with(staticNet, func(n *InstallerNet) { n.Interface = "eno1" })},
		{"kickstart fqdn", "centos-7.9", fqdn, KindKickstart, []string{"ks.cfg"}, base + "ks.cfg",
			InstallerNet{Hostname: "web01", Domain: "dc1.example.org"}},
		{"kickstart offline", "rocky-9.0", func(s *Spec) { s.Offline = true }, KindKickstart, []string{"ks.cfg"}, base + "ks.cfg",
			InstallerNet{Hostname: "demo", Offline: true}},
		{"autoinstall dhcp", "ubuntu-24.04", nil, KindAutoinstall, []string{"seed/meta-data", "seed/user-data"}, base + "seed/",
			InstallerNet{Hostname: "demo"}},
		{"autoinstall static", "ubuntu-22.04", static, KindAutoinstall, []string{"seed/meta-data", "seed/user-data"}, base + "seed/",
			with(staticNet, func(n *InstallerNet) { n.Interface = "eno1" })},
		{"autoinstall domain", "ubuntu-20.04", domain, KindAutoinstall, []string{"seed/meta-data", "seed/user-data"}, base + "seed/",
			InstallerNet{Hostname: "web01", Domain: "lab.example"}},
		{"preseed dhcp", "debian-12", nil, KindPreseed, []string{"preseed.cfg"}, base + "preseed.cfg",
			InstallerNet{Hostname: "demo", NoDefaultRoute: true}},
		{"preseed static keeps interface auto", "debian-11", static, KindPreseed, []string{"preseed.cfg"}, base + "preseed.cfg",
			with(staticNet, func(n *InstallerNet) { n.NoDefaultRoute = true })},
		{"preseed fqdn", "debian-9", fqdn, KindPreseed, []string{"preseed.cfg"}, base + "preseed.cfg",
			InstallerNet{Hostname: "web01", Domain: "dc1.example.org", NoDefaultRoute: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := DemoSpec("")
			require.Equal(t, "demo", s.Hostname, "the cases assume DemoSpec's hostname")
			if tc.edit != nil {
				tc.edit(s)
			}
			before := *s
			set, err := (&Renderer{Rand: zeroReader{}}).Build(tc.os, s, base)
			require.NoError(t, err)
			assert.Equal(t, before, *s, "spec not modified")
			assert.Equal(t, tc.kind, set.Kind)
			assert.Equal(t, tc.url, set.URL)
			assert.Equal(t, tc.net, set.Installer)
			names := make([]string, 0, len(set.Files))
			for n, data := range set.Files {
				names = append(names, n)
				assert.NotEmpty(t, data, n)
			}
			slices.Sort(names)
			assert.Equal(t, tc.files, names)

			// The main file is exactly what Render gives.
			main := tc.files[len(tc.files)-1]
			want, err := (&Renderer{Rand: zeroReader{}}).Render(tc.os, tc.kind, s)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(set.Files[main]))
		})
	}
}

func TestBuildErrors(t *testing.T) {
	_, err := Build("centos-6", DemoSpec(""), "http://h/")
	assert.ErrorIs(t, err, ErrUnknownOS)
	_, err = Build("debian-12", nil, "http://h/")
	assert.ErrorIs(t, err, ErrInvalidSpec)
	s := DemoSpec("")
	s.Network = Network{Mode: "static", Address: "192.0.2.10"}
	_, err = Build("rocky-9.0", s, "http://h/")
	assert.ErrorIs(t, err, ErrInvalidSpec)
	assert.ErrorContains(t, err, "network.address")
}

func TestKindFor(t *testing.T) {
	for id, want := range map[string]Kind{"rocky-9.0": KindKickstart, "ubuntu-22.04": KindAutoinstall, "debian-12": KindPreseed} {
		got, err := KindFor(id)
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
	}
	_, err := KindFor("nope-1")
	assert.ErrorIs(t, err, ErrUnknownOS)
}

func TestOSes(t *testing.T) {
	oses := OSes()
	require.NotEmpty(t, oses)
	for _, o := range oses {
		got, ok := LookupOS(o.ID)
		require.True(t, ok, o.ID)
		assert.Equal(t, o, got)
		_, err := KindFor(o.ID)
		assert.NoError(t, err, o.ID)
	}
	_, ok := LookupOS("nope-1")
	assert.False(t, ok)
	oses[0].ID = "changed"
	assert.NotEqual(t, "changed", OSes()[0].ID, "OSes returns a copy")
}
