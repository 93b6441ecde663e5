package answerfile

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pxekit/pxekit/answerfile/kickstart"
	"github.com/pxekit/pxekit/internal/osid"
)

var update = flag.Bool("update", false, "rewrite golden files")

// rendered is one file of the OS × layout × customization matrix.
type rendered struct {
	info   osid.Info
	kind   Kind
	name   string // golden file name
	data   []byte
	scheme string
	full   bool // every customization: fullSpec or offlineSpec
}

// renderMatrix renders the matrix once per test binary; tests only read it.
func renderMatrix(t testing.TB) []rendered {
	t.Helper()
	out, err := matrixOnce()
	require.NoError(t, err)
	return out
}

var matrixOnce = sync.OnceValues(func() ([]rendered, error) {
	r := &Renderer{Rand: zeroReader{}}
	var out []rendered
	for _, info := range osid.All() {
		kind, err := KindFor(info.ID)
		if err != nil {
			return nil, err
		}
		for _, scheme := range []string{SchemePlain, SchemeLVM} {
			for _, custom := range []string{"demo", "full", "offline"} {
				s, full := DemoSpec(scheme), custom != "demo"
				switch custom {
				case "full":
					s = fullSpec(info, scheme)
				case "offline":
					s = offlineSpec(info, scheme)
				}
				// Build, so that the goldens pin what is served.
				ext := map[Kind]string{KindKickstart: "ks", KindAutoinstall: "user-data", KindPreseed: "preseed"}[kind]
				file := map[Kind]string{KindKickstart: "ks.cfg", KindAutoinstall: "seed/user-data", KindPreseed: "preseed.cfg"}[kind]
				set, err := r.Build(info.ID, s, "http://192.0.2.1/answer/")
				if err != nil {
					return nil, fmt.Errorf("%s %s %s: %w", info.ID, scheme, custom, err)
				}
				out = append(out, rendered{info: info, kind: kind, data: set.Files[file], scheme: scheme, full: full,
					name: fmt.Sprintf("%s.%s.%s.%s", info.ID, scheme, custom, ext)})
				if kind == KindAutoinstall && scheme == SchemePlain {
					out = append(out, rendered{info: info, kind: kindMetaData, data: set.Files["seed/meta-data"], full: full,
						name: fmt.Sprintf("%s.%s.meta-data", info.ID, custom)})
				}
			}
		}
	}
	return out, nil
})

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *update {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	for _, f := range renderMatrix(t) {
		p := filepath.Join(dir, f.name)
		if *update {
			require.NoError(t, os.WriteFile(p, f.data, 0o644))
			continue
		}
		want, err := os.ReadFile(p)
		require.NoError(t, err, "run go test ./answerfile -run TestGolden -update")
		assert.Equal(t, string(want), string(f.data), f.name)
	}
}

func TestNoPlaintextInOutput(t *testing.T) {
	for _, f := range renderMatrix(t) {
		for _, secret := range []string{"root-secret", "ops-secret"} {
			assert.NotContains(t, string(f.data), secret, f.name)
		}
		if !f.full && f.kind != kindMetaData {
			assert.Contains(t, string(f.data), "DEMO password", f.name)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	_, err := Render("centos-6", KindKickstart, DemoSpec(""))
	assert.ErrorIs(t, err, ErrUnknownOS)
	_, err = Render("rocky-9.0", KindPreseed, DemoSpec(""))
	assert.ErrorIs(t, err, ErrUnsupportedKind)
	_, err = Render("ubuntu-24.04", kindMetaData, DemoSpec(""))
	assert.ErrorIs(t, err, ErrUnsupportedKind)
	_, err = Render("debian-12", KindPreseed, nil)
	assert.ErrorIs(t, err, ErrInvalidSpec)

	tests := []struct {
		os, field string
		edit      func(*Spec)
	}{
		{"debian-12", "repos[0].preset", func(s *Spec) { s.Repos = []Repo{{Preset: PresetEPEL}} }},
		{"openeuler-22.03", "repos[0].preset", func(s *Spec) { s.Repos = []Repo{{Preset: PresetDockerCE}} }},
		{"ubuntu-22.04", "repos[0].gpgkey", func(s *Spec) { s.Repos = []Repo{{Name: "x", BaseURL: "http://x.example/ubuntu"}} }},
		{"ubuntu-20.04", "finish", func(s *Spec) { s.Finish = "poweroff" }},
		{"ubuntu-24.04", "users", func(s *Spec) { s.Users = nil }},
		{"ubuntu-24.04", "network.device", func(s *Spec) {
			s.Network = Network{Mode: "static", Address: "192.0.2.2/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.1"}}
		}},
		{"debian-11", "users[0].password", func(s *Spec) { s.Users[0].Password = Password{} }},
		{"debian-11", "root.password", func(s *Spec) { s.Users = nil; s.Root.Password = Password{} }},
		{"rocky-8.5", "root.password", func(s *Spec) { s.Users = nil; s.Root.Password = Password{} }},
	}
	for _, tt := range tests {
		t.Run(tt.os+"/"+tt.field, func(t *testing.T) {
			s := DemoSpec("")
			tt.edit(s)
			kind, _ := KindFor(tt.os)
			_, err := Render(tt.os, kind, s)
			require.ErrorIs(t, err, ErrInvalidSpec)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve))
			assert.Equal(t, tt.field, ve.Problems[0].Field, err.Error())
		})
	}
}

func TestKickstartDialect(t *testing.T) {
	want := map[string]string{
		"centos-7.9": DialectRHEL7, "rhel-7.9": DialectRHEL7, "anolis-7.9": DialectRHEL7,
		"alma-8.5": DialectRHEL8, "rocky-8.5": DialectRHEL8, "rocky-9.0": DialectRHEL9,
		"openeuler-22.03": DialectF33, "kylin-v10": DialectF33, "uos-20": DialectF33,
	}
	for id, d := range want {
		got, err := KickstartDialect(id)
		require.NoError(t, err)
		assert.Equal(t, d, got, id)
	}
	_, err := KickstartDialect("debian-12")
	assert.ErrorIs(t, err, ErrUnsupportedKind)
}

// ksOptions is the command/option table each dialect accepts, written from
// the pykickstart documentation (handlers RHEL7, RHEL8, RHEL9 and F33) for
// the commands the renderer emits or commonly meets.
func ksOptions(d string) map[string][]string {
	common := map[string][]string{
		"text": nil, "skipx": nil, "zerombr": nil,
		"firstboot": {"--disable", "--enable", "--reconfig"},
		"reboot":    {"--eject", "--kexec"},
		"poweroff":  {"--eject", "--kexec"},
		"url":       {"--url", "--mirrorlist", "--proxy", "--noverifyssl"},
		"repo":      {"--name", "--baseurl", "--mirrorlist", "--cost", "--excludepkgs", "--includepkgs", "--proxy", "--ignoregroups", "--noverifyssl", "--install"},
		"lang":      {"--addsupport"},
		"keyboard":  {"--vckeymap", "--xlayouts", "--switch"},
		"timezone":  {"--utc", "--isUtc", "--nontp", "--ntpservers"},
		"network": {"--bootproto", "--device", "--ip", "--netmask", "--gateway", "--nameserver", "--hostname", "--onboot",
			"--activate", "--noipv6", "--ipv6", "--mtu", "--nodns", "--nodefroute", "--ethtool", "--essid", "--wepkey",
			"--wpakey", "--dhcpclass", "--bondslaves", "--bondopts", "--vlanid", "--interfacename", "--teamslaves",
			"--teamconfig", "--bridgeslaves", "--bridgeopts", "--no-activate"},
		"rootpw":     {"--iscrypted", "--plaintext", "--lock"},
		"user":       {"--name", "--gecos", "--groups", "--homedir", "--iscrypted", "--password", "--plaintext", "--shell", "--uid", "--gid", "--lock"},
		"ignoredisk": {"--only-use", "--drives", "--interactive"},
		"clearpart":  {"--all", "--initlabel", "--disklabel", "--drives", "--list", "--linux", "--none", "--cdl"},
		"bootloader": {"--location", "--append", "--boot-drive", "--driveorder", "--password", "--iscrypted", "--timeout", "--leavebootorder", "--md5pass", "--nombr"},
		"part": {"--fstype", "--size", "--grow", "--maxsize", "--ondisk", "--ondrive", "--asprimary", "--label", "--recommended",
			"--encrypted", "--passphrase", "--fsoptions", "--noformat", "--onpart", "--usepart", "--mkfsoptions", "--resize", "--hibernation"},
		"volgroup": {"--pesize", "--useexisting", "--noformat", "--reserved-space", "--reserved-percent"},
		"logvol": {"--vgname", "--name", "--fstype", "--size", "--grow", "--maxsize", "--percent", "--recommended",
			"--encrypted", "--passphrase", "--fsoptions", "--noformat", "--useexisting", "--label", "--thinpool", "--thin", "--mkfsoptions", "--resize", "--hibernation"},
		"selinux":  {"--disabled", "--enforcing", "--permissive"},
		"firewall": {"--enabled", "--disabled", "--service", "--port", "--trust", "--ssh", "--remove-service", "--use-system-defaults"},
		"services": {"--enabled", "--disabled"},
	}
	switch d {
	case DialectRHEL7:
		common["install"] = nil
		common["auth"] = []string{"--enableshadow", "--passalgo", "--useshadow", "--enablemd5", "--enableldap", "--enablekrb5", "--enablesssd"}
		common["authconfig"] = common["auth"]
	case DialectRHEL8, DialectRHEL9, DialectF33:
		common["authselect"] = nil
		common["sshkey"] = []string{"--username"}
		common["url"] = append(common["url"], "--metalink")
		common["repo"] = append(common["repo"], "--metalink")
		common["text"] = []string{"--non-interactive"}
		if d == DialectRHEL9 {
			common["rootpw"] = append(common["rootpw"], "--allow-ssh")
		}
		if d == DialectRHEL9 || d == DialectF33 {
			common["timesource"] = []string{"--ntp-server", "--ntp-pool", "--ntp-disable", "--nts"}
		}
	}
	return common
}

var ksSectionOptions = map[string][]string{
	"packages": {"--ignoremissing", "--nobase", "--nocore", "--excludedocs", "--instLangs", "--multilib", "--default", "--excludeWeakdeps", "--retries", "--timeout"},
	"pre":      {"--log", "--interpreter", "--erroronfail"},
	"post":     {"--log", "--interpreter", "--erroronfail", "--nochroot"},
}

func TestKickstartAgainstTable(t *testing.T) {
	for _, f := range renderMatrix(t) {
		if f.kind != KindKickstart {
			continue
		}
		d := dialectOf(f.info)
		table := ksOptions(d)
		ks, err := kickstart.Parse(f.data)
		require.NoError(t, err, f.name)
		assert.Empty(t, ks.Warnings, f.name)
		assert.True(t, strings.HasPrefix(string(f.data), "#version="+d+"\n"), f.name)
		sections := 0
		for _, l := range ks.Lines {
			if l.Section != nil {
				sections++
				allowed, ok := ksSectionOptions[l.Section.Name]
				require.True(t, ok, "%s: section %%%s", f.name, l.Section.Name)
				for _, a := range l.Section.Args {
					assert.Contains(t, allowed, a.Name, "%s: %%%s %s", f.name, l.Section.Name, a.Name)
				}
			}
			if l.Command == nil {
				continue
			}
			allowed, ok := table[l.Command.Name]
			if !assert.True(t, ok, "%s: %s has no command %q", f.name, d, l.Command.Name) {
				continue
			}
			for _, a := range l.Command.Args {
				if a.Option {
					assert.Contains(t, allowed, a.Name, "%s: %s %s", f.name, l.Command.Name, a.Name)
				}
			}
		}
		assert.Equal(t, sections, strings.Count(string(f.data), "\n%end\n"), "%s: every section ends with %%end", f.name)
		if d != DialectRHEL7 {
			assert.Empty(t, ks.Commands("auth"), f.name)
			assert.Empty(t, ks.Commands("install"), f.name)
		}
		root := ks.Commands("rootpw")
		require.Len(t, root, 1)
		_, allowSSH := root[0].Option("--allow-ssh")
		assert.Equal(t, rootpwAllowSSH(f.info) && f.full, allowSSH, f.name)
		// Rocky 9.0's pykickstart predates rootpw --allow-ssh.
		if f.info.ID == "rocky-9.0" {
			assert.False(t, allowSSH, f.name)
		}
		// One sshkey line per user at most: pykickstart keeps the last.
		assert.Empty(t, ks.Commands("sshkey"), f.name)
		// What the parser reads, it writes back equivalently.
		again, err := kickstart.Parse(ks.Format())
		require.NoError(t, err)
		assert.Equal(t, ks.Lines, again.Lines, f.name)
	}
}

// autoinstallKeys are the top-level autoinstall keys each release's
// installer knows (from the subiquity reference); 24.04 rejects others.
var autoinstallKeys = map[int][]string{
	20: {"version", "early-commands", "locale", "refresh-installer", "keyboard", "network", "proxy", "apt", "storage",
		"identity", "ssh", "snaps", "debconf-selections", "packages", "late-commands", "error-commands", "reporting",
		"user-data", "interactive-sections"},
}

func init() {
	later := append([]string{"timezone", "shutdown", "updates", "kernel", "drivers", "source", "codecs", "oem",
		"ubuntu-pro", "active-directory"}, autoinstallKeys[20]...)
	autoinstallKeys[22] = later
	autoinstallKeys[24] = append([]string{"kernel-crash-dumps", "zdevs"}, later...)
}

func TestAutoinstallYAML(t *testing.T) {
	for _, f := range renderMatrix(t) {
		if f.kind == kindMetaData {
			var md map[string]string
			require.NoError(t, yaml.Unmarshal(f.data, &md), f.name)
			assert.NotEmpty(t, md["instance-id"])
			continue
		}
		if f.kind != KindAutoinstall {
			continue
		}
		require.True(t, strings.HasPrefix(string(f.data), "#cloud-config\n"), f.name)
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(f.data, &doc), f.name)
		require.Len(t, doc, 1, "%s: only the autoinstall key at the top", f.name)
		ai, ok := doc["autoinstall"].(map[string]any)
		require.True(t, ok, f.name)
		assert.Equal(t, 1, ai["version"], f.name)
		for k := range ai {
			assert.Contains(t, autoinstallKeys[f.info.Major], k, "%s: key %s", f.name, k)
		}
		for _, k := range []string{"identity", "storage", "ssh", "network", "late-commands"} {
			assert.Contains(t, ai, k, f.name)
		}
		// Round trip: decoding and encoding again keeps the content.
		out, err := yaml.Marshal(doc)
		require.NoError(t, err)
		var again map[string]any
		require.NoError(t, yaml.Unmarshal(out, &again))
		assert.Equal(t, doc, again, f.name)
	}
}

// TestCloudInitSchema validates every user-data with Debian's cloud-init.
// cloud-init checks the cloud-config around and including the autoinstall
// key: that the file is a #cloud-config mapping and that autoinstall is a
// mapping with an integer version; what is inside autoinstall is opaque to
// it (subiquity's own schema), which TestAutoinstallYAML covers. To keep the
// suite fast, the CLI runs on one file and the rest go through the same
// library call the CLI makes (get_schema + validate_cloudconfig_file) in one
// Python process.
func TestCloudInitSchema(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Skip("cloud-init not installed (Debian package cloud-init)")
	}
	dir := t.TempDir()
	var files []string
	for _, f := range renderMatrix(t) {
		if f.kind != KindAutoinstall {
			continue
		}
		p := filepath.Join(dir, f.name)
		require.NoError(t, os.WriteFile(p, f.data, 0o644))
		files = append(files, p)
	}
	require.NotEmpty(t, files)

	out, err := exec.Command(ci, "schema", "--config-file", files[len(files)-1]).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "Valid cloud-config", string(out))

	// A broken autoinstall must fail, or the checks below prove nothing.
	bad := filepath.Join(dir, "bad.user-data")
	require.NoError(t, os.WriteFile(bad, []byte("#cloud-config\nautoinstall:\n  identity: {}\n"), 0o644))

	// cloud-init's interpreter is the one that can import it.
	head, err := os.ReadFile(ci)
	require.NoError(t, err)
	line, _, _ := strings.Cut(string(head), "\n")
	python, ok := strings.CutPrefix(line, "#!")
	require.True(t, ok, "cloud-init is not a script: %q", line)
	const script = `import sys
from cloudinit.config.schema import get_schema, validate_cloudconfig_file
schema = get_schema()
for p in sys.argv[1:]:
    try:
        validate_cloudconfig_file(p, schema)
        print("VALID", p)
    except Exception as e:
        print("INVALID", p, str(e).replace("\\n", " "))
`
	cmd := exec.Command(strings.Fields(python)[0], append([]string{"-c", script}, append(files, bad)...)...)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, p := range files {
		assert.Contains(t, string(out), "VALID "+p+"\n", "%s", out)
	}
	assert.Contains(t, string(out), "INVALID "+bad+" ", "%s", out)
	assert.Contains(t, string(out), "'version' is a required property", "%s", out)
}

// TestDebconfCheckonly feeds every preseed to debconf-set-selections
// --checkonly against a private, throw-away debconf database.
func TestDebconfCheckonly(t *testing.T) {
	dss, err := exec.LookPath("debconf-set-selections")
	if err != nil {
		t.Skip("debconf-set-selections not installed (Debian package debconf)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "debconf.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `Config: configdb
Templates: templatedb

Name: configdb
Driver: File
Filename: %[1]s/config.dat

Name: templatedb
Driver: File
Filename: %[1]s/templates.dat
`, dir), 0o644))
	var files []rendered
	var paths []string
	for _, f := range renderMatrix(t) {
		if f.kind != KindPreseed {
			continue
		}
		p := filepath.Join(dir, f.name)
		require.NoError(t, os.WriteFile(p, f.data, 0o644))
		files = append(files, f)
		paths = append(paths, p)
		checkPreseedLines(t, f.name, f.data)
	}
	check := func(paths ...string) (string, error) {
		cmd := exec.Command(dss, append([]string{"--checkonly"}, paths...)...)
		cmd.Env = append(os.Environ(), "DEBCONF_SYSTEMRC="+conf)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}
	// All files in one run (debconf-set-selections reads its arguments one
	// after the other); on trouble, one by one to name the culprit.
	stderr, err := check(paths...)
	if err == nil && stderr == "" {
		return
	}
	for i, p := range paths {
		stderr, err := check(p)
		assert.NoError(t, err, files[i].name)
		assert.Empty(t, stderr, "%s: debconf warnings", files[i].name)
	}
	t.Fatalf("debconf-set-selections over all files: %v %s", err, stderr)
}

// checkPreseedLines checks what debconf-set-selections lets pass: every
// setting is "owner question type value", continued lines end in a
// backslash, and nothing else spans lines.
func checkPreseedLines(t *testing.T, name string, data []byte) {
	t.Helper()
	types := map[string]bool{"string": true, "boolean": true, "select": true, "multiselect": true, "password": true, "note": true}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" || strings.HasPrefix(l, "#") {
			assert.False(t, strings.HasSuffix(l, "\\"), "%s: comment line %d would swallow the next line", name, i+1)
			continue
		}
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, "\\") + " " + strings.TrimSpace(lines[i])
		}
		f := strings.Fields(l)
		if assert.GreaterOrEqual(t, len(f), 3, "%s: %q", name, l) {
			assert.True(t, types[f[2]], "%s: type %q in %q", name, f[2], l)
			assert.Contains(t, []string{"d-i", "tasksel", "popularity-contest"}, f[0], name)
		}
		assert.Equal(t, l, strings.TrimRight(l, " \t"), "%s: trailing space", name)
	}
}

func BenchmarkRender(b *testing.B) {
	r := &Renderer{Rand: zeroReader{}}
	for _, id := range []string{"rocky-9.0", "ubuntu-24.04", "debian-12"} {
		kind, _ := KindFor(id)
		info, _ := osid.Lookup(id)
		s := fullSpec(info, SchemeLVM)
		b.Run(id, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Render(id, kind, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
