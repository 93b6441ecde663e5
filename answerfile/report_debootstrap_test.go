package answerfile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// debootstrapSuite is the Debian release the chroot test installs.
const debootstrapSuite = "bookworm"

// debootstrapTree returns a Debian 12 minbase tree with what the post-install
// and first-boot scripts use, built once and cached under $TMPDIR (delete
// $TMPDIR/pxekit-debootstrap-bookworm to rebuild it). The mirror is
// $PXEKIT_DEBIAN_MIRROR, default deb.debian.org.
func debootstrapTree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the debootstrap test needs root (chroot, mount, unshare); CI runs it as root")
	}
	for _, tool := range []string{"debootstrap", "chroot", "unshare", "mount", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install debootstrap busybox util-linux coreutils)", tool)
		}
	}
	cache := filepath.Join(os.TempDir(), "pxekit-debootstrap-"+debootstrapSuite)
	lock, err := os.OpenFile(cache+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX), "another test run builds the tree")
	if _, err := os.Stat(filepath.Join(cache, ".pxekit-complete")); err == nil {
		return cache
	}
	mirror := os.Getenv("PXEKIT_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	tmp := cache + ".tmp"
	require.NoError(t, os.RemoveAll(tmp))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include=curl,sudo,openssh-server",
		debootstrapSuite, tmp, mirror)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Fatalf("debootstrap %s from %s: %v\n%s", debootstrapSuite, mirror, err, tail)
	}
	t.Logf("debootstrap %s --variant=minbase took %s", debootstrapSuite, time.Since(start).Round(time.Second))
	require.NoError(t, os.WriteFile(filepath.Join(tmp, ".pxekit-complete"), nil, 0o644))
	require.NoError(t, os.RemoveAll(cache))
	require.NoError(t, os.Rename(tmp, cache))
	return cache
}

// chrootRun runs a shell command line on the host with a bounded time.
func chrootRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

type gotReport struct {
	path string
	rep  *Report
	raw  string
}

// TestDebootstrapReports installs the post-install script of a Debian 12
// preseed into a real Debian 12 system (debootstrapped, entered with
// chroot) the way the preseed's late_command does, checks the system is as
// the spec says and the report received says so; then runs the first-boot
// unit's script there (in its own UTS namespace, the hostname set from
// /etc/hostname as systemd does at boot) and checks its booted reports.
func TestDebootstrapReports(t *testing.T) {
	tree := debootstrapTree(t)
	start := time.Now()

	root := filepath.Join(t.TempDir(), "target")
	chrootRun(t, nil, "cp", "-a", tree+"/.", root)
	chrootRun(t, nil, "mount", "-t", "proc", "proc", filepath.Join(root, "proc"))
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(root, "run/sshd.pid")); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		_ = exec.Command("umount", "-l", filepath.Join(root, "proc")).Run()
	})

	const key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\npxekit test key, not a real one\n-----END PGP PUBLIC KEY BLOCK-----\n"
	const token = "0123456789abcdef0123456789abcdef"
	var mu sync.Mutex
	var reports []gotReport
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/key.asc":
			io.WriteString(w, key)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/report/"):
			body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
			rep, err := ParseReport(strings.NewReader(string(body)), 64<<10)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			reports = append(reports, gotReport{r.URL.Path, rep, string(body)})
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r) // the apt repository: apt-get update fails on it, harmlessly
		}
	}))
	defer srv.Close()
	reportPath := "/api/report/52-54-00-00-00-01/" + token
	taken := func() []gotReport {
		mu.Lock()
		defer mu.Unlock()
		out := reports
		reports = nil
		return out
	}

	s := &Spec{
		Hostname: "web01",
		Timezone: "UTC",
		Root:     Root{Password: Password{Hash: demoPasswordHash}, SSHKeys: []string{testKey}, AllowSSH: true},
		Users: []User{
			{Name: "ops", FullName: "Operations", Password: Password{Hash: demoPasswordHash}, Sudo: true, Groups: []string{"docker", "adm"}, SSHKeys: []string{testKey}},
			{Name: "deploy", SudoNoPassword: true, Shell: "/bin/bash", Groups: []string{"docker"}, SSHKeys: []string{testKey}},
		},
		Disk:     Disk{Wipe: true},
		Packages: Packages{Names: []string{"curl", "sudo", "openssh-server"}},
		Repos: []Repo{{Name: "pxekit-test", BaseURL: srv.URL + "/repo", GPGKey: srv.URL + "/key.asc",
			Suite: debootstrapSuite, Components: []string{"main", "contrib"}}},
		Post: []Step{
			{Prompt: "green"},
			{Aliases: []Alias{{Name: "ll", Command: "ls -alF"}, {Name: "gs", Command: "git status"}}},
			{File: &File{Path: "/etc/motd", Content: "Managed by pxekit.\n"}},
			{Sysctl: []Sysctl{{Key: "vm.swappiness", Value: "10"}}},
		},
		Callback: Callback{URL: srv.URL + reportPath},
	}
	data, err := Render("debian-12", KindPreseed, s)
	require.NoError(t, err)
	var late string
	for _, l := range strings.Split(string(data), "\n") {
		if c, ok := strings.CutPrefix(l, "d-i preseed/late_command string "); ok {
			late = c
		}
	}
	require.NotEmpty(t, late)

	// What d-i does before late_command, done here by hand since d-i does
	// not run: the first user, the hostname, and apt-setup's local
	// repository from the preseed's apt-setup/local0 answers (one-line
	// format, key next to it). The archive is left out so that nothing
	// talks to anything but loopback.
	chrootRun(t, nil, "chroot", root, "useradd", "-m", "-s", "/bin/bash", "-c", "Operations", "ops")
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("web01\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), nil, 0o644))
	require.NoError(t, os.RemoveAll(filepath.Join(root, "etc/apt/sources.list.d")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755))
	answers := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.SplitN(l, " ", 4); len(f) == 4 && f[0] == "d-i" && strings.HasPrefix(f[1], "apt-setup/local0/") {
			answers[strings.TrimPrefix(f[1], "apt-setup/local0/")] = f[3]
		}
	}
	require.Equal(t, srv.URL+"/repo bookworm main contrib", answers["repository"], "the preseed asks d-i for the spec's repository")
	require.Equal(t, srv.URL+"/key.asc", answers["key"])
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/local0.list"),
		[]byte("# "+answers["comment"]+"\ndeb "+answers["repository"]+"\n"), 0o644))
	chrootRun(t, nil, "chroot", root, "curl", "-fsS", "-o", "/etc/apt/trusted.gpg.d/local0.asc", answers["key"])

	// late_command as d-i runs it: in-target is a chroot into /target, and
	// wget is busybox's.
	bin := t.TempDir()
	bb, _ := exec.LookPath("busybox")
	require.NoError(t, os.Symlink(bb, filepath.Join(bin, "wget")))
	cmd := strings.ReplaceAll(late, "/target", root)
	cmd = strings.ReplaceAll(cmd, "in-target ", "chroot "+root+" ")
	chrootRun(t, []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}, "sh", "-c", cmd)
	postLog, _ := os.ReadFile(filepath.Join(root, "root/pxekit-post.log"))

	got := taken()
	require.Len(t, got, 1, "post log:\n%s", postLog)
	assert.Equal(t, reportPath, got[0].path)
	rep := got[0].rep
	assert.Equal(t, StageInstalled, rep.Stage)
	assert.Equal(t, StatusOK, rep.Status, "%s\npost log:\n%s", got[0].raw, postLog)
	assert.Equal(t, "web01", rep.Hostname)
	assert.Equal(t, "debian-12", rep.OS)
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		assert.True(t, c.OK, c.Name)
	}
	assert.ElementsMatch(t, []string{"user ops", "user deploy", "package curl", "package sudo", "package openssh-server",
		"repo pxekit-test", "file /etc/motd"}, names)

	in := func(args ...string) string {
		t.Helper()
		return chrootRun(t, nil, "chroot", append([]string{root}, args...)...)
	}
	// Users, groups, shells, sudo.
	assert.ElementsMatch(t, []string{"ops", "docker", "adm", "sudo"}, strings.Fields(in("id", "-nG", "ops")))
	assert.ElementsMatch(t, []string{"deploy", "docker", "sudo"}, strings.Fields(in("id", "-nG", "deploy")))
	assert.Equal(t, "/bin/bash", strings.Split(strings.TrimSpace(in("getent", "passwd", "deploy")), ":")[6])
	assert.Contains(t, in("sudo", "-l", "-U", "deploy"), "(ALL) NOPASSWD: ALL")
	assert.Contains(t, in("sudo", "-l", "-U", "ops"), "(ALL : ALL) ALL", "sudo group")
	assert.Contains(t, in("getent", "passwd", "ops"), "Operations")
	for _, home := range []string{"/root", "/home/ops", "/home/deploy"} {
		keys, err := os.ReadFile(filepath.Join(root, home, ".ssh/authorized_keys"))
		require.NoError(t, err, home)
		assert.Equal(t, testKey+"\n", string(keys), home)
	}
	assert.Contains(t, in("ls", "-ld", "/home/deploy/.ssh"), "deploy deploy")
	// Prompt and aliases, as an interactive bash sees them.
	shell := in("bash", "-ic", `alias ll; alias gs; printf '%s\n' "$PS1"`)
	assert.Contains(t, shell, "alias ll='ls -alF'")
	assert.Contains(t, shell, "alias gs='git status'")
	assert.Contains(t, shell, `\[\e[1;32m\][\u@\h \W]\$\[\e[0m\] `, "green prompt")
	// Repositories: the one the spec asked for, its key, and apt reading
	// it (--print-uris lists what update would fetch, fetching nothing).
	list, err := os.ReadFile(filepath.Join(root, "etc/apt/sources.list.d/local0.list"))
	require.NoError(t, err)
	assert.Contains(t, string(list), "deb "+srv.URL+"/repo bookworm main contrib\n")
	gotKey, err := os.ReadFile(filepath.Join(root, "etc/apt/trusted.gpg.d/local0.asc"))
	require.NoError(t, err)
	assert.Equal(t, key, string(gotKey))
	assert.Contains(t, in("apt-get", "update", "--print-uris"), srv.URL+"/repo/dists/bookworm/InRelease")
	// Files, sysctl, sshd.
	assert.Equal(t, "Managed by pxekit.\n", in("cat", "/etc/motd"))
	assert.Equal(t, "vm.swappiness = 10\n", in("cat", "/etc/sysctl.d/90-pxekit.conf"))
	assert.Contains(t, in("sh", "-c", "cat /etc/ssh/sshd_config.d/*.conf"), "PermitRootLogin yes")

	// The first-boot unit is installed and enabled, the URL kept from
	// everyone but root.
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", FirstBootUnit))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "ExecStart="+FirstBootScript)
	assert.NotContains(t, string(unit), token)
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", FirstBootUnit)
	target, err := os.Readlink(wants)
	require.NoError(t, err)
	assert.Equal(t, "/etc/systemd/system/"+FirstBootUnit, target)
	urlFile := filepath.Join(root, FirstBootURLFile)
	st, err := os.Stat(urlFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	assert.Equal(t, s.Callback.URL+"\n", in("cat", FirstBootURLFile))
	script, err := os.ReadFile(filepath.Join(root, FirstBootScript))
	require.NoError(t, err)
	assert.NotContains(t, string(script), token, "the token is in the URL file only")

	// The chroot's sshd listens on a port of its own (the host may run one
	// on 22); the check reads the port from sshd -T.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sshPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config.d/99-test.conf"),
		[]byte(fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\n", sshPort)), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run/sshd"), 0o755))

	firstBoot := func(tries, delay int) string {
		t.Helper()
		return chrootRun(t, []string{fmt.Sprintf("PXEKIT_REPORT_TRIES=%d", tries), fmt.Sprintf("PXEKIT_REPORT_DELAY=%d", delay)},
			"unshare", "--uts", "--", "chroot", root, "/bin/sh", "-c", "hostname -F /etc/hostname && exec "+FirstBootScript)
	}
	rearm := func(url string) {
		t.Helper()
		require.NoError(t, os.WriteFile(urlFile, []byte(url+"\n"), 0o600))
		_ = os.Remove(wants)
		require.NoError(t, os.Symlink("/etc/systemd/system/"+FirstBootUnit, wants))
	}
	assertDisabled := func() {
		t.Helper()
		_, err := os.Lstat(wants)
		assert.ErrorIs(t, err, os.ErrNotExist, "the unit disables itself")
		_, err = os.Stat(urlFile)
		assert.ErrorIs(t, err, os.ErrNotExist, "the URL (a secret) is removed")
	}

	// 1. The server is unreachable: a bounded number of attempts, and the
	// journal never shows the URL.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String() + "/api/report/52-54-00-00-00-01/" + token
	dead.Close()
	rearm(deadURL)
	out := firstBoot(2, 1)
	assert.Contains(t, out, "pxekit: boot report attempt 1 failed; next in 1s")
	assert.Contains(t, out, "pxekit: boot report not delivered after 2 attempts")
	assert.NotContains(t, out, token)
	assert.NotContains(t, out, dead.Addr().String())
	assertDisabled()
	assert.Empty(t, taken())

	// 2. sshd is not running: the booted report says which check failed.
	rearm(s.Callback.URL)
	out = firstBoot(1, 0)
	assert.NotContains(t, out, token)
	got = taken()
	require.Len(t, got, 1, out)
	assert.Equal(t, StageBooted, got[0].rep.Stage)
	assert.Equal(t, StatusFailed, got[0].rep.Status, out)
	assert.Equal(t, []string{"sshd listening"}, got[0].rep.Failed(), out)
	assertDisabled()

	// 3. sshd is up: everything holds.
	chrootRun(t, nil, "chroot", root, "/usr/sbin/sshd")
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", sshPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "sshd in the chroot did not listen")
	rearm(s.Callback.URL)
	out = firstBoot(1, 0)
	got = taken()
	require.Len(t, got, 1, out)
	assert.Equal(t, reportPath, got[0].path)
	boot := got[0].rep
	assert.Equal(t, StageBooted, boot.Stage)
	assert.Equal(t, StatusOK, boot.Status, "%s\n%s", got[0].raw, out)
	names = nil
	for _, c := range boot.Checks {
		names = append(names, c.Name)
	}
	assert.ElementsMatch(t, []string{"user ops", "user deploy", "package curl", "package sudo", "package openssh-server",
		"repo pxekit-test", "file /etc/motd", "hostname web01", "address", "sshd listening"}, names)
	assertDisabled()
	var sent map[string]any
	require.NoError(t, json.Unmarshal([]byte(in("cat", BootReportPath)), &sent))
	assert.Equal(t, "booted", sent["stage"])
	t.Logf("chroot part (copy, late_command, checks, three first boots) took %s", time.Since(start).Round(time.Millisecond))
}
