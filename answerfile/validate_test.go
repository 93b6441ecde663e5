package answerfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func problemFields(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "want a *ValidationError, got %v", err)
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.Field)
	}
	return out
}

func TestParseHash(t *testing.T) {
	sha512 := demoPasswordHash
	for _, tc := range []struct {
		hash string
		id   string
		ok   bool
	}{
		{sha512, "6", true},
		{"$6$rounds=10000$salt$" + sha512[len(sha512)-86:], "6", true},
		{"$6$pxekitdemosalt", "6", false},
		{sha512[:len(sha512)-1], "6", false},
		{"$6$toolongsaltsaltsalt$" + sha512[len(sha512)-86:], "6", false},
		{"$5$salt$" + strings.Repeat("a", 43), "5", true},
		{"$1$salt$" + strings.Repeat("a", 22), "1", true},
		{"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", "y", true},
		{"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o", "y", false},
		{"$2b$10$" + strings.Repeat("a", 53), "2b", true},
		{"$2b$10$" + strings.Repeat("a", 20), "2b", false},
		{"$7$whatever", "7", false},
		{"hunter2", "", false},
	} {
		id, why := parseHash(tc.hash)
		assert.Equal(t, tc.id, id, tc.hash)
		assert.Equal(t, tc.ok, why == "", "%s: %s", tc.hash, why)
		assert.NotContains(t, why, "hunter2")
	}
}

func TestHashSupportPerTarget(t *testing.T) {
	yescrypt := "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
	bcrypt := "$2b$10$" + strings.Repeat("a", 53)
	for _, tc := range []struct {
		os, hash string
		ok       bool
	}{
		{"centos-7.9", yescrypt, false},
		{"centos-7.9", bcrypt, false},
		{"debian-10", yescrypt, false},
		{"debian-9", bcrypt, false},
		{"debian-11", yescrypt, true},
		{"ubuntu-22.04", yescrypt, true},
		{"rocky-9.0", yescrypt, true},
		{"rocky-9.0", bcrypt, true},
		{"kylin-v10", yescrypt, false},
		{"centos-7.9", demoPasswordHash, true},
	} {
		s := DemoSpec("")
		s.Users[0].Password = Password{Hash: tc.hash}
		kind, _ := KindFor(tc.os)
		_, err := Render(tc.os, kind, s)
		if tc.ok {
			assert.NoError(t, err, "%s %s", tc.os, tc.hash)
			continue
		}
		assert.Contains(t, problemFields(t, err), "users[0].password.hash", tc.os)
		assert.Contains(t, err.Error(), "could never log in", tc.os)
		assert.NotContains(t, err.Error(), tc.hash, "errors never quote a hash")
	}
}

func TestValidateTimezone(t *testing.T) {
	for tz, ok := range map[string]bool{
		"Asia/Shanghai": true, "UTC": true, "America/Argentina/Buenos_Aires": true, "Etc/GMT+8": true,
		"Asia/Shangai": false, "Local": false, "Mars/Olympus": false, "../../etc/passwd": false,
	} {
		s := DemoSpec("")
		s.Timezone = tz
		err := s.Validate()
		if ok {
			assert.NoError(t, err, tz)
		} else {
			assert.Equal(t, []string{"timezone"}, problemFields(t, err), tz)
		}
	}
}

func TestValidateDiskAndNTP(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Spec)
	}{
		{"disk.serial", func(s *Spec) { s.Disk.Serial = "a'b" }},
		{"disk.min_gib", func(s *Spec) { s.Disk.MinGiB = -1 }},
		{"disk.max_gib", func(s *Spec) { s.Disk.MinGiB, s.Disk.MaxGiB = 100, 50 }},
		{"disk.max_gib", func(s *Spec) { s.Disk.MaxGiB = 7 }}, // 7168 MiB < 7683
		{"disk.device", func(s *Spec) { s.Disk.Device = "/dev/disk/by-id/../../sda" }},
		{"ntp[1]", func(s *Spec) { s.NTP = []string{"192.0.2.1", "bad host"} }},
		{"layout.partitions[0].size", func(s *Spec) {
			s.Layout.Partitions = []Volume{{Mount: "/boot/efi", Size: 1}, {Mount: "/", Grow: true}}
		}},
		{"layout.partitions[1].size", func(s *Spec) {
			s.Layout.Partitions = []Volume{{Mount: "/boot/efi", Size: 512}, {Mount: "/boot", Size: 100}, {Mount: "/", Grow: true}}
		}},
		{"layout.partitions[0].mount", func(s *Spec) {
			s.Layout.Partitions = []Volume{{Mount: "biosboot", Size: 1}, {Mount: "/boot/efi", Size: 512}, {Mount: "/", Grow: true}}
		}},
		{"post[0]", func(s *Spec) { s.Post = []Step{{Shell: strings.Repeat("x", maxStepBytes+1)}} }},
		{"users[0].ssh_keys", func(s *Spec) { s.Users[0].SSHKeys = make([]string, maxKeys+1) }},
	} {
		s := DemoSpec("")
		tc.edit(s)
		assert.Contains(t, problemFields(t, s.Validate()), tc.field)
	}
	s := DemoSpec("")
	s.Disk = Disk{Device: "/dev/disk/by-id/nvme-Samsung_SSD_980_S64DNX0R123456", Serial: "S64DNX0R123456", MinGiB: 100, MaxGiB: 2000, Wipe: true}
	s.NTP = []string{"ntp.example.com", "192.0.2.1", "2001:db8::1"}
	assert.NoError(t, s.Validate())
}

func TestMinDiskMiB(t *testing.T) {
	assert.Equal(t, 7683, DefaultLayout("").MinDiskMiB())
	assert.Equal(t, 7691, DefaultLayout(SchemeLVM).MinDiskMiB())
	assert.Less(t, DefaultLayout(SchemeLVM).MinDiskMiB(), 9536, "fits a 10 GB disk")
	// 1 biosboot + 600 + 2048 (/ at least) + 2 GPT.
	assert.Equal(t, 2651, Layout{Partitions: []Volume{{Mount: "/boot/efi", Size: 600}, {Mount: "/", Grow: true}}}.MinDiskMiB())
	// LVs round up to 4 MiB extents.
	l := Layout{Scheme: SchemeLVM, LVM: LVM{Volumes: []Volume{{Mount: "swap", Size: 1}, {Mount: "/", Size: 4097}}}}
	assert.Equal(t, 2+1+512+1024+8+4+4100, l.MinDiskMiB())
	// Nonsense sizes do not overflow.
	huge := Layout{Partitions: make([]Volume, 200)}
	for i := range huge.Partitions {
		huge.Partitions[i] = Volume{Mount: "/x", Size: 1 << 62}
	}
	assert.Positive(t, huge.MinDiskMiB())
	// DefaultLayout returns a copy.
	d := DefaultLayout("")
	d.Partitions[0].Size = 1
	assert.Equal(t, defaultESPMiB, DefaultLayout("").Partitions[0].Size)
}

func TestParseSpecNeverEchoesSecrets(t *testing.T) {
	for _, in := range []string{
		"hostname: a\nroot:\n  password: hunter2secret\n",
		"hostname: a\nroot: hunter2secret\n",
		"hostname: a\nusers:\n  - name: x\n    password: hunter2secret\n",
		"hostname: a\nroot:\n  password: {hunter2secret: x}\n",
		"hostname: a\nroot:\n  password: [hunter2secret]\n",
		"hostname: a\nusers: hunter2secret\n",
	} {
		_, err := ParseSpec([]byte(in))
		require.Error(t, err, in)
		assert.NotContains(t, err.Error(), "hunter2secret", in)
	}
	s, err := ParseSpec([]byte("hostname: a\nroot:\n  password: {hash: hunter2secret}\n"))
	require.NoError(t, err)
	err = s.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2secret")
}

func TestParseSpecBounds(t *testing.T) {
	_, err := ParseSpec(make([]byte, MaxSpecBytes+1))
	assert.ErrorContains(t, err, "at most")
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i, prev := 0, "a"; i < 6; i++ {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 10), ",") + "]\n"
		prev = name
	}
	_, err = ParseSpec([]byte(bomb))
	assert.ErrorContains(t, err, "YAML nodes")
	// A spec round-trips through YAML with its new fields.
	s := DemoSpec(SchemeLVM)
	s.Offline, s.NTP = true, []string{"192.0.2.1"}
	s.Disk = Disk{Serial: "X1", MinGiB: 10, MaxGiB: 20, Wipe: true}
	out, err := yaml.Marshal(s)
	require.NoError(t, err)
	back, err := ParseSpec(out)
	require.NoError(t, err)
	assert.Equal(t, s, back)
}
