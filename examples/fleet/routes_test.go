package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callbackURL is the report URL an answer file makes the installer post to.
var callbackURL = regexp.MustCompile(`'(http://[^']*/api/report/[^']*)'`)

func reportURL(t *testing.T, answer string) string {
	t.Helper()
	m := callbackURL.FindStringSubmatch(answer)
	require.NotNil(t, m, "no callback in the answer file:\n%s", answer)
	return m[1]
}

// assertInstallMenus checks every loader's menu of mac installs profile
// with mac's own answer file.
func assertInstallMenus(t *testing.T, s *server, mac, profile string) {
	t.Helper()
	own := s.http + "hosts/" + macPath(mac) + "/preseed.cfg"
	kernel := "profiles/" + profile + "/boot/debian-installer/amd64/linux"

	grub, err := tftpGet(t, s, "grub/grub.cfg-01-"+macPath(mac))
	require.NoError(t, err)
	assert.Contains(t, grub, "set default=install")
	assert.Contains(t, grub, "linux /"+kernel+" ")
	assert.Contains(t, grub, "url="+own+" ")

	pxe, err := tftpGet(t, s, "pxelinux.cfg/01-"+macPath(mac))
	require.NoError(t, err)
	assert.Contains(t, pxe, "DEFAULT install")
	assert.Contains(t, pxe, "KERNEL "+kernel)
	assert.Contains(t, pxe, "url="+own+" ")

	code, ipxe := httpGet(t, s.http+"hosts/"+macPath(mac)+"/boot.ipxe")
	require.Equal(t, 200, code, ipxe)
	assert.Contains(t, ipxe, "kernel "+s.http+kernel+" ")
	assert.Contains(t, ipxe, "url="+own+" ")
	assert.Contains(t, ipxe, "choose --default install")
}

// assertLocalMenus checks every loader's menu of mac boots the disk and
// nothing else.
func assertLocalMenus(t *testing.T, s *server, mac string) {
	t.Helper()
	grub, err := tftpGet(t, s, "grub/grub.cfg-01-"+macPath(mac))
	require.NoError(t, err)
	assert.Contains(t, grub, "set default=local")
	assert.Contains(t, grub, "set timeout=0", "no one waits at a console for a finished host")
	assert.NotContains(t, grub, "linux ")

	pxe, err := tftpGet(t, s, "pxelinux.cfg/01-"+macPath(mac))
	require.NoError(t, err)
	assert.Contains(t, pxe, "LOCALBOOT 0")
	assert.NotContains(t, pxe, "KERNEL")

	code, ipxe := httpGet(t, s.http+"hosts/"+macPath(mac)+"/boot.ipxe")
	require.Equal(t, 200, code, ipxe)
	assert.NotContains(t, ipxe, "kernel ")
	assert.Contains(t, ipxe, "exit")
}

func TestRoutesInstallOnce(t *testing.T) {
	needTool(t, "curl")
	needTool(t, "busybox")
	s := startServer(t, writeInventory(t, UnknownLocal))
	assert.Contains(t, s.stdout.String(), "3 host(s), 2 profile(s); unknown MACs: local")

	assertInstallMenus(t, s, macWeb, "debian12")
	assertInstallMenus(t, s, macDB, "debian12")
	assertInstallMenus(t, s, macApp, "debian11")

	// What the menus name is served, over both protocols.
	kernel := "profiles/debian12/boot/debian-installer/amd64/linux"
	out, err := tftpGet(t, s, kernel)
	require.NoError(t, err)
	assert.Equal(t, "fake kernel", out)
	code, out := httpGet(t, s.http+"profiles/debian11/boot/debian-installer/amd64/initrd.gz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "fake initrd", out)

	// Each host gets its own answer file. The last menu fetched was from
	// app01 on this same address: the file's own MAC must win over the
	// address when the step is recorded.
	code, web := httpGet(t, s.http+"hosts/"+macPath(macWeb)+"/preseed.cfg")
	require.Equal(t, 200, code, web)
	code, db := httpGet(t, s.http+"hosts/"+macPath(macDB)+"/preseed.cfg")
	require.Equal(t, 200, code, db)
	for _, tc := range []struct {
		name, file  string
		has, hasNot []string
	}{
		{"web01", web,
			[]string{"netcfg/get_hostname string web01", "pkgsel/include string nginx", "partman-auto/method string lvm", "time/zone string Asia/Shanghai"},
			[]string{"db01", "postgresql", "10.77.0.21", "pkgsel/include string curl"}},
		{"db01", db,
			[]string{"netcfg/get_hostname string db01", "pkgsel/include string postgresql", "netcfg/get_ipaddress string 10.77.0.21", "netcfg/get_gateway string 10.77.0.1"},
			[]string{"web01", "nginx"}},
	} {
		for _, w := range tc.has {
			assert.Contains(t, tc.file, w, tc.name)
		}
		for _, w := range tc.hasNot {
			assert.NotContains(t, tc.file, w, tc.name)
		}
	}
	assert.Equal(t, s.http+"api/report/"+macPath(macWeb), reportURL(t, web))
	assert.Equal(t, s.http+"api/report/"+macPath(macDB), reportURL(t, db))

	waitStage(t, s, macWeb, "answer")
	waitStage(t, s, macDB, "answer")
	st := statusJSON(t, s)
	for _, mac := range []string{macWeb, macDB} {
		assert.Equal(t, Installing, st[mac].State, mac)
		assert.Equal(t, "answer", string(st[mac].Stage), mac)
		assert.Equal(t, "hosts/"+macPath(mac)+"/preseed.cfg", st[mac].Detail, mac)
	}
	assert.Equal(t, Pending, st[macApp].State)
	// Kernel and initrd name no MAC: on this shared address they went to
	// the last host seen, app01; the answer files did not.
	assert.NotEqual(t, "answer", string(st[macApp].Stage), "%+v", st[macApp])

	// Malformed reports are refused and change nothing.
	for _, tc := range []struct{ mac, body, why string }{
		{"not-a-mac", `{"status":"ok"}`, "not a MAC address"},
		{macPath(macDB), `{"status":"great"}`, `status "great"`},
		{macPath(macDB), `{"status":`, "report:"},
	} {
		code, out := httpDo(t, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", tc.body, s.http+"api/report/"+tc.mac)
		assert.Equal(t, 400, code, tc.body)
		assert.Contains(t, out, tc.why)
	}
	assert.Equal(t, Installing, statusJSON(t, s)[macDB].State)

	// db01 reports the way Debian's installer does, to the URL its answer
	// file names.
	require.NoError(t, debianReport(t, reportURL(t, db),
		reportJSON("db01", "ok", map[string]bool{"user ops": true, "package postgresql": true})))
	code, out = httpGet(t, s.http+"hosts/"+macPath(macDB)+"/preseed.cfg")
	assert.Equal(t, 403, code)
	assert.Contains(t, out, "db01: installed (done, reported ")
	assert.Contains(t, out, "re-arm with reinstall")
	assertLocalMenus(t, s, macDB)
	assertInstallMenus(t, s, macWeb, "debian12")

	// web01 reports failed checks the way anaconda and subiquity do (curl
	// with a file): it boots its disk too, it does not reinstall in a loop.
	rep := filepath.Join(t.TempDir(), "pxekit-report.json")
	require.NoError(t, os.WriteFile(rep, []byte(reportJSON("web01", "failed", map[string]bool{"service nginx": false, "user ops": true})), 0o600))
	_, err = tool(t, "curl", "-fsS", "-m", "30", "--retry", "3", "-X", "POST", "-H", "Content-Type: application/json",
		"--data-binary", "@"+rep, reportURL(t, web))
	require.NoError(t, err)
	code, out = httpGet(t, s.http+"hosts/"+macPath(macWeb)+"/preseed.cfg")
	assert.Equal(t, 403, code)
	assert.Contains(t, out, "installed (failed")
	assertLocalMenus(t, s, macWeb)

	st = statusJSON(t, s)
	assert.Equal(t, Done, st[macDB].State)
	assert.Equal(t, ActLocal, st[macDB].Next)
	assert.Equal(t, "hosts/"+macPath(macDB)+"/boot.ipxe (local)", st[macDB].Detail, "its latest step: the local menu")
	require.NotNil(t, st[macDB].Report)
	assert.Equal(t, "127.0.0.1", st[macDB].Report.From)
	assert.Equal(t, Failed, st[macWeb].State)
	assert.Equal(t, []string{"service nginx"}, st[macWeb].FailedChecks())
	assert.Equal(t, ActInstall, st[macApp].Next)

	// Re-arm db01 through the API, as the banner says.
	code, out = httpDo(t, "-X", "POST", s.http+"api/hosts/db01/reinstall")
	require.Equal(t, 200, code, out)
	var rec Record
	require.NoError(t, json.Unmarshal([]byte(out), &rec))
	assert.Equal(t, Record{MAC: macDB, Hostname: "db01", State: Pending, Changed: rec.Changed}, rec)
	assertInstallMenus(t, s, macDB, "debian12")
	code, out = httpGet(t, s.http+"hosts/"+macPath(macDB)+"/preseed.cfg")
	assert.Equal(t, 200, code)
	assert.Contains(t, out, "netcfg/get_hostname string db01")
	assertLocalMenus(t, s, macWeb)

	code, out = httpDo(t, "-X", "POST", s.http+"api/hosts/nosuch/reinstall")
	assert.Equal(t, 404, code)
	assert.Contains(t, out, "no such host")
	// Re-arming wipes a disk: never on a GET a crawler or a preview sends.
	code, _ = httpGet(t, s.http+"api/hosts/web01/reinstall")
	assert.NotEqual(t, 200, code)
	assert.Equal(t, ActLocal, statusJSON(t, s)[macWeb].Next)
}

func TestRoutesUnknownMAC(t *testing.T) {
	needTool(t, "curl")
	needTool(t, "busybox")
	ipxeURL := "hosts/" + macPath(macNew) + "/boot.ipxe"
	answerURL := "hosts/" + macPath(macNew) + "/debian12/preseed.cfg"

	t.Run("local", func(t *testing.T) {
		s := startServer(t, writeInventory(t, UnknownLocal))
		assertLocalMenus(t, s, macNew)
		code, out := httpGet(t, s.http+answerURL)
		assert.Equal(t, 403, code)
		assert.Contains(t, out, "unknown MAC: local boot")
	})

	t.Run("ignore", func(t *testing.T) {
		s := startServer(t, writeInventory(t, UnknownIgnore))
		for _, name := range []string{"grub/grub.cfg-01-" + macPath(macNew), "pxelinux.cfg/01-" + macPath(macNew)} {
			_, err := tftpGet(t, s, name)
			assert.Error(t, err, name)
		}
		for _, name := range []string{ipxeURL, answerURL} {
			code, out := httpGet(t, s.http+name)
			assert.Equal(t, 403, code, name)
			assert.Contains(t, out, "ignored", name)
		}
		assertInstallMenus(t, s, macWeb, "debian12")
		_, listed := statusJSON(t, s)[macNew]
		assert.False(t, listed, "an ignored MAC leaves no trace")
	})

	t.Run("menu", func(t *testing.T) {
		s := startServer(t, writeInventory(t, UnknownMenu))
		grub, err := tftpGet(t, s, "grub/grub.cfg-01-"+macPath(macNew))
		require.NoError(t, err)
		assert.Contains(t, grub, "set default=local", "nobody at the console: the disk boots")
		for _, want := range []string{
			"'Install debian11 (debian-11)' --id install-debian11",
			"'Install debian12 (debian-12)' --id install-debian12",
			"url=" + s.http + "hosts/" + macPath(macNew) + "/debian11/preseed.cfg ",
			"url=" + s.http + answerURL + " ",
		} {
			assert.Contains(t, grub, want)
		}
		pxe, err := tftpGet(t, s, "pxelinux.cfg/01-"+macPath(macNew))
		require.NoError(t, err)
		assert.Contains(t, pxe, "DEFAULT local")
		assert.Contains(t, pxe, "LABEL install-debian11")
		assert.Contains(t, pxe, "LABEL install-debian12")
		code, ipxe := httpGet(t, s.http+ipxeURL)
		require.Equal(t, 200, code)
		assert.Contains(t, ipxe, "item install-debian12 Install debian12 (debian-12)")

		code, answer := httpGet(t, s.http+answerURL)
		require.Equal(t, 200, code, answer)
		assert.Contains(t, answer, "netcfg/get_hostname string pxe-525400990009")
		assert.Contains(t, answer, "pkgsel/include string curl", "the profile's spec")
		code, _ = httpGet(t, s.http+"hosts/"+macPath(macNew)+"/nope/preseed.cfg")
		assert.Equal(t, 404, code)

		require.NoError(t, debianReport(t, reportURL(t, answer), reportJSON("pxe-525400990009", "ok", nil)))
		assertLocalMenus(t, s, macNew)
		code, out := httpGet(t, s.http+answerURL)
		assert.Equal(t, 403, code)
		assert.Contains(t, out, "pxe-525400990009: installed (done")
		st := statusJSON(t, s)[macNew]
		assert.False(t, st.Listed)
		assert.Equal(t, "pxe-525400990009", st.Hostname)
		assert.Equal(t, Done, st.State)
		assert.Equal(t, ActLocal, st.Next)

		// Re-armed by MAC, it gets the menu again.
		code, out = httpDo(t, "-X", "POST", s.http+"api/hosts/"+macPath(macNew)+"/reinstall")
		require.Equal(t, 200, code, out)
		grub, err = tftpGet(t, s, "grub/grub.cfg-01-"+macPath(macNew))
		require.NoError(t, err)
		assert.Contains(t, grub, "install-debian12")
	})
}

func TestRoutesRefuseTraversal(t *testing.T) {
	needTool(t, "curl")
	inventory := writeInventory(t, UnknownMenu)
	dir := filepath.Dir(inventory)
	const secret = "pxekit-test-secret"
	// Next to the netboot tree and above it, where a ../ would reach.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(secret), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nb", "debian-installer", "secret.txt"), []byte(secret), 0o600))
	s := startServer(t, inventory)

	for _, name := range []string{
		"profiles/debian12/boot/../secret.txt",
		"profiles/debian12/boot/../../../secret.txt",
		"profiles/debian12/boot/debian-installer/amd64/../../../secret.txt",
		"profiles/debian12/boot/..%2fsecret.txt",
		"profiles/debian12/boot/%2e%2e/secret.txt",
		"profiles/../../secret.txt",
		"hosts/" + macPath(macWeb) + "/../../secret.txt",
		"hosts/" + macPath(macWeb) + "/..%2f..%2fsecret.txt",
		"../secret.txt",
		"../fleet.yaml",
		"fleet.state.json",
		"etc/passwd",
		"/etc/passwd",
	} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			code, out := httpDo(t, "--path-as-is", s.http+strings.TrimPrefix(name, "/"))
			assert.NotEqual(t, 200, code, "HTTP %s", name)
			assert.NotContains(t, out, secret)
			assert.NotContains(t, out, "root:")
			assert.NotContains(t, out, "profiles:")

			tftpName := strings.NewReplacer("%2f", "/", "%2e", ".").Replace(name)
			out, err := tool(t, "curl", "-sS", "--max-time", "10", "--path-as-is", s.tftp+tftpName)
			assert.Error(t, err, "TFTP %s", tftpName)
			assert.NotContains(t, out, secret)
			assert.NotContains(t, out, "root:")
		})
	}
	// The legitimate neighbour of those names is served.
	code, out := httpGet(t, s.http+"profiles/debian12/boot/debian-installer/amd64/linux")
	assert.Equal(t, 200, code)
	assert.Equal(t, "fake kernel", out)

	_, err := tftpGet(t, s, "hosts/"+macPath(macWeb)+"/preseed.cfg")
	assert.Error(t, err, "answer files (passwords) are not on TFTP")

	for _, name := range []string{"hosts/not-a-mac/boot.ipxe", "hosts/" + macPath(macWeb) + "/", "hosts/" + macPath(macWeb) + "/ks.cfg"} {
		code, _ := httpGet(t, s.http+name)
		assert.Equal(t, 404, code, name)
	}
}
