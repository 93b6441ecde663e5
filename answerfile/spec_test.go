package answerfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pxekit/pxekit/internal/osid"
)

func TestSecretRedaction(t *testing.T) {
	p := Password{Plain: "hunter2"}
	j, err := json.Marshal(p)
	require.NoError(t, err)
	assert.NotContains(t, string(j), "hunter2")
	y, err := yaml.Marshal(p)
	require.NoError(t, err)
	assert.NotContains(t, string(y), "hunter2")
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p.Plain)} {
		assert.NotContains(t, s, "hunter2")
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "pw", p.Plain, "spec", p)
	assert.NotContains(t, buf.String(), "hunter2")
	assert.Equal(t, "", Secret("").String())
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(`
hostname: web01
root:
  password: {plain: s3cret}
users:
  - name: ops
    sudo: true
    ssh_keys: ["` + testKey + `"]
disk: {wipe: true}
layout:
  scheme: lvm
  lvm:
    vg: sys
    volumes:
      - {mount: /, size: 10240, grow: true}
post:
  - enable: [chronyd]
  - sysctl: [{key: vm.swappiness, value: "10"}]
callback: {url: "http://192.0.2.1/done"}
`))
	require.NoError(t, err)
	require.NoError(t, s.Validate())
	assert.Equal(t, Secret("s3cret"), s.Root.Password.Plain)
	assert.Equal(t, "sys", s.Layout.LVM.VG)

	_, err = ParseSpec([]byte("hostname: x\nhostnmae: y\n"))
	assert.ErrorContains(t, err, "hostnmae")

	// A spec written back to YAML keeps everything but the plaintext.
	out, err := yaml.Marshal(s)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "s3cret")
	back, err := ParseSpec(out)
	require.NoError(t, err)
	back.Root.Password.Plain = s.Root.Password.Plain
	assert.Equal(t, s, back)
}

func TestValidateAllAtOnce(t *testing.T) {
	s := DemoSpec(SchemeLVM)
	s.Hostname = "bad_host"
	s.Disk.Wipe = false
	s.Users = append(s.Users, User{Name: "ops"}, User{Name: "Bad"})
	s.Layout.LVM.Volumes = []Volume{{Mount: "swap", Size: 4096}, {Mount: "/var", Size: 100}, {Mount: "/data", Size: 0}, {Mount: "/var", Size: 5}}
	s.Network = Network{Mode: "static", Address: "192.0.2.5/24", Gateway: "198.51.100.1"}
	s.Post = append(s.Post, Step{}, Step{Shell: "x", Prompt: "green"}, Step{Prompt: "pink"})
	s.Finish = "halt"
	err := s.Validate()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalidSpec))
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	fields := map[string]bool{}
	for _, p := range ve.Problems {
		fields[p.Field] = true
	}
	for _, f := range []string{
		"hostname", "disk.wipe", "users[1].name", "users[2].name", "layout.lvm.volumes[2].size",
		"layout.lvm.volumes[3].mount", "layout.lvm.volumes[3].name", "layout", "network.gateway", "network.dns",
		"post[2]", "post[3]", "post[4].prompt", "finish",
	} {
		assert.True(t, fields[f], "missing problem for %s in:\n%v", f, err)
	}
	assert.Contains(t, err.Error(), "layout.lvm.volumes[2].size: must be > 0")
}

func TestValidateLayout(t *testing.T) {
	tests := []struct {
		name   string
		layout Layout
		field  string // "" = valid
	}{
		{"default plain", Layout{}, ""},
		{"default lvm", Layout{Scheme: SchemeLVM}, ""},
		{"no root", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "/data", Grow: true}}}, "layout"},
		{"no esp", Layout{Partitions: []Volume{{Mount: "/", Grow: true}}}, "layout"},
		{"duplicate", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "/", Size: 10}, {Mount: "/", Grow: true}}}, "layout.partitions[2].mount"},
		{"esp not vfat", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600, FS: "ext4"}, {Mount: "/", Grow: true}}}, "layout.partitions[0].fs"},
		{"two grow", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "/var", Grow: true}, {Mount: "/", Grow: true}}}, "layout.partitions[1].grow"},
		{"lvm without scheme", Layout{LVM: LVM{Volumes: []Volume{{Mount: "swap", Size: 10}}}}, "layout.lvm"},
		{"esp on lvm", Layout{Scheme: SchemeLVM, Partitions: []Volume{{Mount: "/boot", Size: 500}},
			LVM: LVM{Volumes: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "/", Grow: true}}}}, "layout.lvm.volumes[0].mount"},
		{"swap fs mismatch", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "swap", Size: 5, FS: "xfs"}, {Mount: "/", Grow: true}}}, "layout.partitions[1].fs"},
		{"bad scheme", Layout{Scheme: "zfs"}, "layout.scheme"},
		{"lv name on partition", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "/", Grow: true, Name: "root"}}}, "layout.partitions[1].name"},
		{"grow pv partition", Layout{Scheme: SchemeLVM, Partitions: []Volume{{Mount: "/boot/efi", Grow: true}}}, "layout.partitions[0].grow"},
		{"relative mount", Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "var", Size: 5}, {Mount: "/", Grow: true}}}, "layout.partitions[1].mount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DemoSpec("")
			s.Layout = tt.layout
			err := s.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "want an error for %s", tt.field)
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.Field)
			}
			assert.Contains(t, got, tt.field, err.Error())
		})
	}
}

func TestValidateFields(t *testing.T) {
	tests := []struct {
		field string
		edit  func(*Spec)
	}{
		{"root.password", func(s *Spec) { s.Root.Password.Plain = "x" }},
		{"root.password.hash", func(s *Spec) { s.Root.Password.Hash = "plaintext!" }},
		{"root.ssh_keys[0]", func(s *Spec) { s.Root.SSHKeys = []string{"not a key"} }},
		{"timezone", func(s *Spec) { s.Timezone = "Asia Shanghai" }},
		{"locale", func(s *Spec) { s.Locale = "english" }},
		{"mirror", func(s *Spec) { s.Mirror = "mirror.example.com/debian" }},
		{"network.mode", func(s *Spec) { s.Network.Mode = "bootp" }},
		{"network.mac", func(s *Spec) { s.Network.MAC = "zz" }},
		{"network.address", func(s *Spec) {
			s.Network = Network{Mode: "static", Address: "192.0.2.5", Gateway: "192.0.2.1", DNS: []string{"192.0.2.1"}}
		}},
		{"disk.device", func(s *Spec) { s.Disk.Device = "sda; rm -rf /" }},
		{"packages.names[0]", func(s *Spec) { s.Packages.Names = []string{"vim emacs"} }},
		{"repos[0].preset", func(s *Spec) { s.Repos = []Repo{{Preset: "rpmfusion"}} }},
		{"repos[0].baseurl", func(s *Spec) { s.Repos = []Repo{{Name: "x"}} }},
		{"repos[1].name", func(s *Spec) { s.Repos = []Repo{{Preset: PresetNginx}, {Preset: PresetNginx}} }},
		{"post[0].file.path", func(s *Spec) { s.Post = []Step{{File: &File{Path: "etc/x"}}} }},
		{"post[0].file.mode", func(s *Spec) { s.Post = []Step{{File: &File{Path: "/etc/x", Mode: "rw"}}} }},
		{"post[0].sysctl[0].key", func(s *Spec) { s.Post = []Step{{Sysctl: []Sysctl{{Key: "a b", Value: "1"}}}} }},
		{"post[0].aliases[0].command", func(s *Spec) { s.Post = []Step{{Aliases: []Alias{{Name: "x"}}}} }},
		{"callback.url", func(s *Spec) { s.Callback.URL = "file:///tmp/x" }},
		{"callback.events", func(s *Spec) { s.Callback.Events = true }},
		{"users[0].name", func(s *Spec) { s.Users[0].Name = "root" }},
		{"users[0].shell", func(s *Spec) { s.Users[0].Shell = "bash" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			s := DemoSpec("")
			tt.edit(s)
			var ve *ValidationError
			require.True(t, errors.As(s.Validate(), &ve))
			assert.Equal(t, tt.field, ve.Problems[0].Field, ve.Error())
		})
	}
}

func TestExampleSpecRendersEverywhere(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "specs", "example.yaml"))
	require.NoError(t, err)
	s, err := ParseSpec(data)
	require.NoError(t, err)
	require.NoError(t, s.Validate())
	for _, id := range osid.IDs() {
		kind, err := KindFor(id)
		require.NoError(t, err)
		info, _ := osid.Lookup(id)
		out, err := Render(id, kind, s)
		if info.Family == osid.Anaconda && !isELClone(info) {
			// nginx.org has no openEuler, Kylin or UOS repository.
			require.ErrorIs(t, err, ErrInvalidSpec, id)
			assert.ErrorContains(t, err, "repos[0].preset", id)
			continue
		}
		require.NoError(t, err, id)
		assert.Contains(t, string(out), "/etc/motd", id)
	}
}

func TestRenderReportsSpecAndInstallerProblemsTogether(t *testing.T) {
	s := DemoSpec("")
	s.Users = nil
	s.Disk.Wipe = false
	_, err := Render("ubuntu-22.04", KindAutoinstall, s)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	var fields []string
	for _, p := range ve.Problems {
		fields = append(fields, p.Field)
	}
	assert.Equal(t, []string{"disk.wipe", "users"}, fields)
}

// Broken specs give errors, never panics, for every OS.
func TestRenderBrokenSpecs(t *testing.T) {
	specs := []*Spec{
		{},
		{Layout: Layout{Scheme: "zfs"}, Network: Network{Mode: "static", Address: "bogus"}},
		{Hostname: "x", Disk: Disk{Wipe: true}, Users: []User{{}}, Repos: []Repo{{Preset: "x"}, {}}, Post: []Step{{}, {File: &File{}}}},
		{Hostname: "x", Disk: Disk{Wipe: true}, Layout: Layout{Scheme: SchemeLVM, Partitions: []Volume{{}}, LVM: LVM{Volumes: []Volume{{Grow: true}, {}}}}},
	}
	for _, id := range osid.IDs() {
		kind, _ := KindFor(id)
		for i, s := range specs {
			_, err := Render(id, kind, s)
			assert.ErrorIs(t, err, ErrInvalidSpec, "%s spec %d", id, i)
		}
	}
}

// FuzzParseSpec: any YAML either fails to parse, or validates and renders
// (or is rejected) for every installer family without panicking. Plaintext
// passwords are swapped for a hash first: SHA-512 crypt's 5000 rounds are
// too slow under fuzzing instrumentation (TestNoPlaintextInOutput covers
// hashing).
func FuzzParseSpec(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("testdata", "specs", "example.yaml"))
	require.NoError(f, err)
	f.Add(example)
	demo, err := yaml.Marshal(DemoSpec(SchemeLVM))
	require.NoError(f, err)
	f.Add(demo)
	f.Add([]byte("hostname: a\ndisk: {wipe: true}\nroot: {password: {plain: zzsecretzz}}\n"))
	f.Add([]byte("layout: {scheme: lvm, lvm: {volumes: [{mount: /, size: -5}]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			return
		}
		unplain := func(p *Password) {
			if p.Plain != "" {
				p.Plain, p.Hash = "", demoPasswordHash
			}
		}
		unplain(&s.Root.Password)
		for i := range s.Users {
			unplain(&s.Users[i].Password)
		}
		_ = s.Validate()
		for _, id := range []string{"centos-7.9", "rocky-9.0", "ubuntu-20.04", "ubuntu-24.04", "debian-12"} {
			kind, _ := KindFor(id)
			out, err := Render(id, kind, s)
			if err == nil && len(out) == 0 {
				t.Fatalf("%s: empty output without an error", id)
			}
		}
	})
}

// An isolated install network has no router: a static setup without a
// gateway is valid, and no installer is told of one.
func TestStaticWithoutGateway(t *testing.T) {
	s := DemoSpec(SchemePlain)
	s.Network = Network{Mode: "static", Address: "192.0.2.5/24", DNS: []string{"192.0.2.53"}}
	require.NoError(t, s.Validate())
	for _, id := range []string{"debian-12", "rocky-9.0", "ubuntu-24.04"} {
		if id == "ubuntu-24.04" {
			s.Network.Device = "eno1" // subiquity matches a named device
		}
		set, err := Build(id, s, "http://192.0.2.1/answer/")
		require.NoError(t, err, id)
		assert.False(t, set.Installer.Gateway.IsValid(), id)
		assert.Equal(t, "192.0.2.5/24", set.Installer.Address.String(), id)
	}
}
