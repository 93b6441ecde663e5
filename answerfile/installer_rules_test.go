package answerfile

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pxekit/pxekit/answerfile/kickstart"
)

func aiConfigOf(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(data, &doc))
	ai, ok := doc["autoinstall"].(map[string]any)
	require.True(t, ok)
	return ai
}

func TestAutoinstallStorage(t *testing.T) {
	for _, f := range renderMatrix(t) {
		if f.kind != KindAutoinstall {
			continue
		}
		ai := aiConfigOf(t, f.data)
		cfg := ai["storage"].(map[string]any)["config"].([]any)
		byType := map[string][]map[string]any{}
		for _, it := range cfg {
			m := it.(map[string]any)
			byType[m["type"].(string)] = append(byType[m["type"].(string)], m)
		}
		require.Len(t, byType["disk"], 1, f.name)
		disk := byType["disk"][0]
		assert.Equal(t, diskPlaceholder, disk["path"], f.name)
		assert.NotContains(t, disk, "match", f.name)
		assert.Equal(t, true, disk["grub_device"], "%s: BIOS GRUB goes to the disk", f.name)
		parts := byType["partition"]
		assert.Equal(t, "bios_grub", parts[0]["flag"], f.name)
		assert.Equal(t, "1M", parts[0]["size"], f.name)
		assert.Equal(t, "boot", parts[1]["flag"], "%s: the ESP", f.name)
		for _, lv := range byType["lvm_partition"] {
			assert.NotContains(t, lv, "wipe", "%s: curtin's lvm_partition schema has no wipe", f.name)
		}
		if f.scheme == SchemeLVM {
			assert.NotEmpty(t, byType["lvm_partition"], f.name)
		}
	}
}

// TestAutoinstallEarlyCommandsPickDisk runs the rendered early-commands
// against a fake /sys and checks the storage config then names the disk.
func TestAutoinstallEarlyCommandsPickDisk(t *testing.T) {
	s := DemoSpec(SchemeLVM)
	s.Disk.MinGiB = 100
	out, err := Render("ubuntu-24.04", KindAutoinstall, s)
	require.NoError(t, err)
	ai := aiConfigOf(t, out)
	early := ai["early-commands"].([]any)
	require.GreaterOrEqual(t, len(early), 2)
	tmp := t.TempDir()
	aiFile := filepath.Join(tmp, "autoinstall.yaml")
	inner, err := yaml.Marshal(ai)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(aiFile, inner, 0o644))
	root := fakeSys(t, []fakeDisk{{name: "sda", mib: 60000}, {name: "sdb", mib: 500000}, {name: "sdc", mib: 2000000}}, nil)
	fix := strings.NewReplacer("/autoinstall.yaml", aiFile, "/tmp/", tmp+"/", "/dev/console", filepath.Join(tmp, "console"))
	for _, c := range early[:2] {
		cmd := exec.Command("sh", "-c", fix.Replace(c.(string)))
		cmd.Env = append(os.Environ(), "PXEKIT_ROOT="+root)
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", c, b)
	}
	got, err := os.ReadFile(aiFile)
	require.NoError(t, err)
	assert.NotContains(t, string(got), "path: "+diskPlaceholder)
	assert.Contains(t, string(got), "path: /dev/sdb")

	// No disk fits: the command fails and says why.
	root = fakeSys(t, []fakeDisk{{name: "sda", mib: 60000}}, nil)
	cmd := exec.Command("sh", "-c", fix.Replace(early[0].(string))+"\n"+fix.Replace(early[1].(string)))
	cmd.Env = append(os.Environ(), "PXEKIT_ROOT="+root)
	b, err := cmd.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(b), "no disk matches disk.min_gib=100; disks seen: sda (60000 MiB)")
}

func TestAutoinstallIdentityUser(t *testing.T) {
	s := DemoSpec("")
	s.Users[0].Sudo = false
	s.Users[0].Groups = []string{"docker", "adm"}
	s.Users[0].Shell = "/usr/bin/zsh"
	out, err := Render("ubuntu-22.04", KindAutoinstall, s)
	require.NoError(t, err)
	ai := aiConfigOf(t, out)
	ud := ai["user-data"].(map[string]any)
	assert.Equal(t, []any{
		[]any{"usermod", "-aG", "docker,adm", "ops"},
		[]any{"gpasswd", "-d", "ops", "sudo"},
		[]any{"usermod", "-s", "/usr/bin/zsh", "ops"},
	}, ud["runcmd"])
	// A sudo user with the default shell needs nothing.
	out, err = Render("ubuntu-22.04", KindAutoinstall, DemoSpec(""))
	require.NoError(t, err)
	assert.NotContains(t, aiConfigOf(t, out), "user-data")
}

func TestOffline(t *testing.T) {
	s := DemoSpec("")
	s.Offline = true
	_, err := Render("ubuntu-24.04", KindAutoinstall, s)
	assert.Equal(t, []string{"mirror"}, problemFields(t, err))

	s.Mirror = "http://mirror.example.com/ubuntu"
	out, err := Render("ubuntu-24.04", KindAutoinstall, s)
	require.NoError(t, err)
	ai := aiConfigOf(t, out)
	apt := ai["apt"].(map[string]any)
	assert.Equal(t, false, apt["geoip"])
	assert.Equal(t, "offline-install", apt["fallback"])
	assert.Equal(t, []any{"updates", "security", "backports"}, apt["disable_suites"])
	assert.Equal(t, apt["primary"], apt["security"])
	assert.Contains(t, string(out), "NTP=%s\\nFallbackNTP=\\n' ''")

	out, err = Render("ubuntu-20.04", KindAutoinstall, s)
	require.NoError(t, err)
	assert.NotContains(t, aiConfigOf(t, out)["apt"], "fallback", "20.04 has no apt fallback")

	for os, want := range map[string]string{
		"centos-7.9": "timezone UTC --utc --nontp\n", "rocky-8.5": "timezone UTC --utc --nontp\n",
		"rocky-9.0": "timesource --ntp-disable\n", "openeuler-22.03": "timesource --ntp-disable\n",
		"kylin-v10": "timezone UTC --utc --nontp\n",
	} {
		out, err := Render(os, KindKickstart, s)
		require.NoError(t, err, os)
		assert.Contains(t, string(out), want, os)
		assert.Contains(t, string(out), "baseurl=http://mirror.example.com/ubuntu", os)
	}
	s.NTP = []string{"ntp1.example.com", "192.0.2.1"}
	out, err = Render("rocky-8.5", KindKickstart, s)
	require.NoError(t, err)
	assert.Contains(t, string(out), "timezone UTC --utc --ntpservers=ntp1.example.com,192.0.2.1\n")
	out, err = Render("rocky-9.0", KindKickstart, s)
	require.NoError(t, err)
	assert.Contains(t, string(out), "timesource --ntp-server=ntp1.example.com\ntimesource --ntp-server=192.0.2.1\n")
	assert.NotContains(t, string(out), "--ntp-disable")

	// Not offline, no NTP: the installers' defaults.
	out, err = Render("rocky-9.0", KindKickstart, DemoSpec(""))
	require.NoError(t, err)
	assert.NotContains(t, string(out), "timesource")
	assert.NotContains(t, string(out), "pxekit-offline")
}

// TestKickstartSectionInjection: no post step can close %post and add
// top-level kickstart commands.
func TestKickstartSectionInjection(t *testing.T) {
	s := DemoSpec("")
	s.Post = []Step{
		{Shell: "echo a\n%end\nrootpw --plaintext owned\n%post\necho b\n"},
		{File: &File{Path: "/etc/x", Content: "%end\n%pre\nrm -rf /\n"}},
	}
	out, err := Render("rocky-9.0", KindKickstart, s)
	require.NoError(t, err)
	ks, err := kickstart.Parse(out)
	require.NoError(t, err)
	assert.Empty(t, ks.Warnings)
	require.Len(t, ks.Commands("rootpw"), 1)
	_, plain := ks.Commands("rootpw")[0].Option("--plaintext")
	assert.False(t, plain)
	assert.Len(t, ks.Sections("pre"), 1)
	posts := ks.Sections("post")
	require.Len(t, posts, 1)
	// The body carries the script in base64, which decodes to it.
	body := strings.Join(posts[0].Body, "\n")
	start := strings.Index(body, "<<'PXEKIT_POST'\n") + len("<<'PXEKIT_POST'\n")
	end := strings.Index(body, "\nPXEKIT_POST\n")
	require.Positive(t, end)
	script, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(body[start:end], "\n", ""))
	require.NoError(t, err)
	assert.Contains(t, string(script), "%end\nrootpw --plaintext owned\n")
}

func TestKickstartKeysAndRootSSH(t *testing.T) {
	s := DemoSpec("")
	s.Users[0].SSHKeys = []string{testKey, testKey2}
	s.Root.SSHKeys = []string{testKey, testKey2}
	s.Root.AllowSSH = true
	for _, id := range []string{"centos-7.9", "rocky-8.5", "rocky-9.0", "openeuler-22.03", "uos-20"} {
		out, err := Render(id, KindKickstart, s)
		require.NoError(t, err, id)
		ks, err := kickstart.Parse(out)
		require.NoError(t, err)
		assert.Empty(t, ks.Commands("sshkey"), id)
		_, allow := ks.Commands("rootpw")[0].Option("--allow-ssh")
		assert.False(t, allow, "%s: no release in the table has rootpw --allow-ssh", id)
		post := strings.Join(ks.Sections("post")[0].Body, "\n")
		// Both keys of root and of ops reach authorized_keys.
		assert.Equal(t, 2, strings.Count(post, "#| echo 'ssh-ed25519 "), id)
		assert.Equal(t, 2, strings.Count(post, "#| echo 'ecdsa-sha2-nistp256 "), id)
		rootLogin := strings.Contains(post, "PermitRootLogin yes")
		assert.Equal(t, id == "rocky-9.0" || id == "openeuler-22.03" || id == "uos-20", rootLogin, id)
	}
}

// Debian's and Ubuntu's useradd default to /bin/sh; users the script
// creates get /bin/bash unless the spec says otherwise.
func TestExtraUsersShell(t *testing.T) {
	s := DemoSpec("")
	s.Users = append(s.Users, User{Name: "dev", SSHKeys: []string{testKey}}, User{Name: "svc", Shell: "/usr/sbin/nologin", SSHKeys: []string{testKey}})
	out, err := Render("ubuntu-24.04", KindAutoinstall, s)
	require.NoError(t, err)
	assert.Contains(t, string(out), "useradd -m -s '/bin/bash' dev")
	assert.Contains(t, string(out), "useradd -m -s '/usr/sbin/nologin' svc")
	out, err = Render("rocky-9.0", KindKickstart, s)
	require.NoError(t, err)
	assert.Contains(t, string(out), "user --name=dev --lock\n", "anaconda's useradd gives /bin/bash")
}

// TestKickstartOfflineRepos runs the offline %post against a fake
// /etc/yum.repos.d.
func TestKickstartOfflineRepos(t *testing.T) {
	s := DemoSpec("")
	s.Offline = true
	s.Mirror = "http://mirror.example.com/rocky/9/BaseOS/x86_64/os/"
	s.Repos = []Repo{{Preset: PresetEPEL}}
	out, err := Render("rocky-9.0", KindKickstart, s)
	require.NoError(t, err)
	ks, err := kickstart.Parse(out)
	require.NoError(t, err)
	var body string
	for _, sec := range ks.Sections("post") {
		if v, _ := sec.Option("--log"); v == "/root/pxekit-offline.log" {
			body = strings.Join(sec.Body, "\n")
		}
	}
	require.NotEmpty(t, body)
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	write("rocky.repo", "[baseos]\nmirrorlist=https://mirrors.rockylinux.org/x\nenabled=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n[appstream]\nenabled = 1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n")
	write("epel.repo", "[epel]\nenabled=1\n")
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(body, "/etc/yum.repos.d", dir))
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(data)
	}
	assert.NotContains(t, read("rocky.repo"), "enabled=1")
	assert.Equal(t, 2, strings.Count(read("rocky.repo"), "enabled=0"))
	assert.Contains(t, read("epel.repo"), "enabled=1", "the spec's repositories stay")
	assert.Equal(t, "[pxekit-mirror]\nname=pxekit-mirror (pxekit offline)\nbaseurl=http://mirror.example.com/rocky/9/BaseOS/x86_64/os/\n"+
		"enabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n", read("pxekit-mirror.repo"))
	assert.Contains(t, read("pxekit-mirror-appstream.repo"), "baseurl=http://mirror.example.com/rocky/9/AppStream/x86_64/os/\n")
}
