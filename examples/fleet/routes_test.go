package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
)

// callbackURL is the report URL an answer file makes the installer post to.
var callbackURL = regexp.MustCompile(`'(http://[^']*/api/report/[^']*)'`)

func reportURL(t *testing.T, answer string) string {
	t.Helper()
	m := callbackURL.FindStringSubmatch(answer)
	require.NotNil(t, m, "no callback in the answer file:\n%s", answer)
	return m[1]
}

// answerURLRE finds the answer-file URL a menu's kernel arguments name.
var answerURLRE = regexp.MustCompile(`url=(http://\S+)`)

// answerURL is the answer-file URL of mac's install, read from its iPXE
// menu (for an unknown MAC, the profile's entry).
func answerURL(t *testing.T, s *server, mac, profile string) string {
	t.Helper()
	code, ipxe := httpGet(t, s.http+"hosts/"+macPath(mac)+"/boot.ipxe")
	require.Equal(t, 200, code, ipxe)
	for _, m := range answerURLRE.FindAllStringSubmatch(ipxe, -1) {
		if profile == "" || strings.Contains(m[1], "/"+profile+"/") {
			return m[1]
		}
	}
	t.Fatalf("no answer URL for %s %s in\n%s", mac, profile, ipxe)
	return ""
}

// ownAnswer matches the URL of mac's own answer file: hosts/MAC/TOKEN/.
func ownAnswer(s *server, mac string) string {
	return regexp.QuoteMeta(s.http+"hosts/"+macPath(mac)+"/") + `[0-9a-f]{32}/preseed\.cfg `
}

// assertInstallMenus checks every loader's menu of mac installs profile
// with mac's own answer file.
func assertInstallMenus(t *testing.T, s *server, mac, profile string) {
	t.Helper()
	own := ownAnswer(s, mac)
	kernel := "profiles/" + profile + "/boot/debian-installer/amd64/linux"

	grub, err := tftpGet(t, s, "grub/grub.cfg-01-"+macPath(mac))
	require.NoError(t, err)
	assert.Contains(t, grub, "set default=install")
	// With the host's http module served, the path follows "${pxekit_http}".
	assert.Regexp(t, `linux ("\$\{pxekit_http\}")?/`+regexp.QuoteMeta(kernel)+" ", grub)
	assert.Regexp(t, "url="+own, grub)

	pxe, err := tftpGet(t, s, "pxelinux.cfg/01-"+macPath(mac))
	require.NoError(t, err)
	assert.Contains(t, pxe, "DEFAULT install")
	assert.Contains(t, pxe, "KERNEL "+kernel)
	assert.Regexp(t, "url="+own, pxe)

	code, ipxe := httpGet(t, s.http+"hosts/"+macPath(mac)+"/boot.ipxe")
	require.Equal(t, 200, code, ipxe)
	assert.Contains(t, ipxe, "kernel "+s.http+kernel+" ")
	assert.Regexp(t, "url="+own, ipxe)
	assert.Contains(t, ipxe, "goto install", "an armed host boots its install at once")
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
	webURL, dbURL := answerURL(t, s, macWeb, ""), answerURL(t, s, macDB, "")
	code, web := httpGet(t, webURL)
	require.Equal(t, 200, code, web)
	code, db := httpGet(t, dbURL)
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
	webToken := strings.Split(strings.TrimPrefix(webURL, s.http+"hosts/"), "/")[1]
	dbToken := strings.Split(strings.TrimPrefix(dbURL, s.http+"hosts/"), "/")[1]
	assert.NotEqual(t, webToken, dbToken)
	assert.Equal(t, s.http+"api/report/"+macPath(macWeb)+"/"+webToken, reportURL(t, web), "the answer file's token")
	assert.Equal(t, s.http+"api/report/"+macPath(macDB)+"/"+dbToken, reportURL(t, db))

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
		{"not-a-mac/" + dbToken, `{"status":"ok"}`, "not a MAC address"},
		{macPath(macDB) + "/" + dbToken, `{"status":"great"}`, `status "great"`},
		{macPath(macDB) + "/" + dbToken, `{"status":`, "bad report: not a JSON object"},
		{macPath(macDB), `{"status":"ok"}`, "carries the host's token"},
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
	code, out = httpGet(t, dbURL)
	assert.Equal(t, 403, code)
	assert.Contains(t, out, "db01: installed (installed, reported ")
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
	code, out = httpGet(t, webURL)
	assert.Equal(t, 403, code)
	assert.Contains(t, out, "installed (failed")
	assertLocalMenus(t, s, macWeb)

	st = statusJSON(t, s)
	assert.Equal(t, Installed, st[macDB].State)
	assert.Equal(t, ActLocal, st[macDB].Next)
	assert.Equal(t, "hosts/"+macPath(macDB)+"/boot.ipxe (local)", st[macDB].Detail, "its latest step: the local menu")
	require.NotNil(t, st[macDB].Report)
	assert.Equal(t, "127.0.0.1", st[macDB].Report.From)
	assert.Equal(t, Failed, st[macWeb].State)
	assert.Equal(t, []string{"service nginx"}, st[macWeb].FailedChecks())
	assert.Equal(t, ActInstall, st[macApp].Next)

	// Re-arm db01 through the API, as the banner says.
	code, out = httpDo(t, "-X", "POST", "-H", ReinstallHeader+": 1", s.http+"api/hosts/db01/reinstall")
	require.Equal(t, 200, code, out)
	var rec Record
	require.NoError(t, json.Unmarshal([]byte(out), &rec))
	assert.Equal(t, Record{MAC: macDB, Hostname: "db01", State: Pending, Changed: rec.Changed}, rec, "no token in the answer")
	assertInstallMenus(t, s, macDB, "debian12")
	newDBURL := answerURL(t, s, macDB, "")
	assert.NotEqual(t, dbURL, newDBURL, "re-arming draws a new token")
	code, _ = httpGet(t, dbURL)
	assert.Equal(t, 404, code, "the old install's URL is dead")
	code, out = httpGet(t, newDBURL)
	assert.Equal(t, 200, code)
	assert.Contains(t, out, "netcfg/get_hostname string db01")
	assert.NotContains(t, out, dbToken)
	assertLocalMenus(t, s, macWeb)

	code, out = httpDo(t, "-X", "POST", "-H", ReinstallHeader+": 1", s.http+"api/hosts/nosuch/reinstall")
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

	t.Run("local", func(t *testing.T) {
		s := startServer(t, writeInventory(t, UnknownLocal))
		assertLocalMenus(t, s, macNew)
		code, _ := httpGet(t, s.http+"hosts/"+macPath(macNew)+"/debian12/preseed.cfg")
		assert.Equal(t, 404, code)
		state, _ := os.ReadFile(s.state)
		assert.NotContains(t, string(state), macNew, "an unknown MAC under local leaves no state")
	})

	t.Run("ignore", func(t *testing.T) {
		s := startServer(t, writeInventory(t, UnknownIgnore))
		for _, name := range []string{"grub/grub.cfg-01-" + macPath(macNew), "pxelinux.cfg/01-" + macPath(macNew)} {
			_, err := tftpGet(t, s, name)
			assert.Error(t, err, name)
		}
		code, out := httpGet(t, s.http+ipxeURL)
		assert.Equal(t, 403, code)
		assert.Contains(t, out, "ignored")
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
		} {
			assert.Contains(t, grub, want)
		}
		assert.Regexp(t, regexp.QuoteMeta("url="+s.http+"hosts/"+macPath(macNew)+"/")+"[0-9a-f]{32}/debian11/preseed.cfg ", grub)
		assert.Regexp(t, regexp.QuoteMeta("url="+s.http+"hosts/"+macPath(macNew)+"/")+"[0-9a-f]{32}/debian12/preseed.cfg ", grub)
		answerURL := answerURL(t, s, macNew, "debian12")
		pxe, err := tftpGet(t, s, "pxelinux.cfg/01-"+macPath(macNew))
		require.NoError(t, err)
		assert.Contains(t, pxe, "DEFAULT local")
		assert.Contains(t, pxe, "LABEL install-debian11")
		assert.Contains(t, pxe, "LABEL install-debian12")
		code, ipxe := httpGet(t, s.http+ipxeURL)
		require.Equal(t, 200, code)
		assert.Contains(t, ipxe, "item install-debian12 Install debian12 (debian-12)")

		code, answer := httpGet(t, answerURL)
		require.Equal(t, 200, code, answer)
		assert.Contains(t, answer, "netcfg/get_hostname string pxe-525400990009")
		assert.Contains(t, answer, "pkgsel/include string curl", "the profile's spec")
		code, _ = httpGet(t, strings.Replace(answerURL, "/debian12/", "/nope/", 1))
		assert.Equal(t, 404, code)
		_, known := statusJSON(t, s)[macNew]
		assert.True(t, known, "the menu shown, in the bounded list of recent unknown MACs")

		require.NoError(t, debianReport(t, reportURL(t, answer), reportJSON("pxe-525400990009", "ok", nil)))
		assertLocalMenus(t, s, macNew)
		code, out := httpGet(t, answerURL)
		assert.Equal(t, 403, code)
		assert.Contains(t, out, "pxe-525400990009: installed (installed")
		st := statusJSON(t, s)[macNew]
		assert.False(t, st.Listed)
		assert.Equal(t, "pxe-525400990009", st.Hostname)
		assert.Equal(t, Installed, st.State)
		assert.Equal(t, ActLocal, st.Next)

		// Re-armed by MAC, it gets the menu again.
		code, out = httpDo(t, "-X", "POST", "-H", "Content-Type: application/json", s.http+"api/hosts/"+macPath(macNew)+"/reinstall")
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

// The first boot's report through the real server: installed, overdue
// after -boot-timeout, then booted; the boot menu stays local throughout.
func TestRoutesFirstBoot(t *testing.T) {
	needTool(t, "curl")
	s := startServer(t, writeInventory(t, UnknownLocal), "-boot-timeout", "1ms")
	code, answer := httpGet(t, answerURL(t, s, macWeb, ""))
	require.Equal(t, 200, code, answer)
	rep := reportURL(t, answer)
	assert.Contains(t, answer, "pxekit-firstboot.service", "the answer file installs the first-boot unit")

	post := func(body string) (int, string) {
		return httpDo(t, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, rep)
	}
	code, out := post(reportJSON("web01", "ok", map[string]bool{"user ops": true}))
	require.Equal(t, 204, code, out)
	require.Eventually(t, func() bool { return statusJSON(t, s)[macWeb].Overdue }, 5*time.Second, 20*time.Millisecond)
	st := statusJSON(t, s)[macWeb]
	assert.Equal(t, Installed, st.State)
	assert.Equal(t, ActLocal, st.Next)
	assertLocalMenus(t, s, macWeb)
	code, _ = post(reportJSON("web01", "ok", nil))
	assert.Equal(t, 409, code, "a replay")

	booted := `{"stage":"booted","hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"sshd listening","ok":true}]}`
	code, out = post(booted)
	require.Equal(t, 204, code, out)
	st = statusJSON(t, s)[macWeb]
	assert.Equal(t, Booted, st.State)
	assert.Equal(t, "booted", st.StageName())
	assert.False(t, st.Overdue)
	require.NotNil(t, st.Boot)
	assert.Equal(t, "127.0.0.1", st.Boot.From)
	code, _ = post(booted)
	assert.Equal(t, 409, code)
	assertLocalMenus(t, s, macWeb)
	assert.NotContains(t, s.stderr.String()+s.stdout.String(), strings.Split(rep, "/")[len(strings.Split(rep, "/"))-1],
		"the token is in no log line")
}

// The hardening rows against the real server: answer files and reports
// need the token (rows 7, 8), refused requests leave nothing behind
// (row 9), and the reinstall API refuses what a browser page could send
// (row 14).
func TestRoutesHardening(t *testing.T) {
	needTool(t, "curl")
	s := startServer(t, writeInventory(t, UnknownLocal))
	own := answerURL(t, s, macWeb, "")
	token := strings.Split(strings.TrimPrefix(own, s.http+"hosts/"), "/")[1]

	// Row 8: without the token, GET and HEAD get a bare 404 and change
	// nothing; HEAD with it does not start the install either.
	for _, args := range [][]string{
		{s.http + "hosts/" + macPath(macWeb) + "/preseed.cfg"},
		{"-I", s.http + "hosts/" + macPath(macWeb) + "/preseed.cfg"},
		{s.http + "hosts/" + macPath(macWeb) + "/" + strings.Repeat("f", 32) + "/preseed.cfg"},
		{"-I", s.http + "hosts/" + macPath(macWeb) + "/" + strings.Repeat("f", 32) + "/preseed.cfg"},
		{"-I", own},
	} {
		code, out := httpDo(t, args...)
		if args[0] == "-I" && args[1] == own {
			assert.Equal(t, 200, code)
		} else {
			assert.Equal(t, 404, code, args)
		}
		assert.NotContains(t, out, "$6$")
		assert.NotContains(t, out, token)
	}
	st := statusJSON(t, s)[macWeb]
	assert.Equal(t, Pending, st.State)
	assert.NotEqual(t, "answer", string(st.Stage))

	// Row 7: a report needs the token; 1 MiB bodies are refused whole.
	body := reportJSON("web01", "ok", nil)
	code, _ := httpDo(t, "-X", "POST", "--data-binary", body, s.http+"api/report/"+macPath(macWeb)+"/"+strings.Repeat("f", 32))
	assert.Equal(t, 403, code)
	big := filepath.Join(t.TempDir(), "big.json")
	require.NoError(t, os.WriteFile(big, []byte(`{"hostname":"`+strings.Repeat("h", 900<<10)+`","status":"ok"}`), 0o600))
	code, out := httpDo(t, "-X", "POST", "--data-binary", "@"+big, s.http+"api/report/"+macPath(macWeb)+"/"+token)
	assert.Equal(t, 413, code, out)
	assert.Equal(t, Pending, statusJSON(t, s)[macWeb].State)

	// Row 9: a report for a made-up MAC leaves no row and no record.
	code, _ = httpDo(t, "-X", "POST", "--data-binary", body, s.http+"api/report/52-54-00-de-ad-01/"+token)
	assert.Equal(t, 403, code)
	_, row := statusJSON(t, s)["52:54:00:de:ad:01"]
	assert.False(t, row)
	state, err := os.ReadFile(s.state)
	require.NoError(t, err)
	assert.NotContains(t, string(state), "52:54:00:de:ad:01")

	// Row 14: what a page in a browser on this machine could send.
	for _, args := range [][]string{
		{"-H", "Origin: http://evil.example", "-H", "Content-Type: application/x-www-form-urlencoded", "--data", "x=1"},
		{"-H", "Content-Type: text/plain", "--data", "x"},
		{"-H", "Sec-Fetch-Site: cross-site", "-H", ReinstallHeader + ": 1"},
		{},
	} {
		code, out := httpDo(t, append(append([]string{"-X", "POST"}, args...), s.http+"api/hosts/web01/reinstall")...)
		assert.Equal(t, 403, code, "%v: %s", args, out)
	}
	code, out = httpDo(t, "-X", "POST", "-H", ReinstallHeader+": 1", s.http+"api/hosts/web01/reinstall")
	assert.Equal(t, 200, code, out)
	assert.NotEqual(t, own, answerURL(t, s, macWeb, ""), "re-armed: a new token")
}

// -grub-http=false (GRUBTFTPOnly) keeps an armed host's GRUB on TFTP; by
// default its menu lets GRUB load the host's http module when one matches.
func TestGRUBTFTPOnly(t *testing.T) {
	needHostLoaders(t)
	for _, tftpOnly := range []bool{false, true} {
		f, _ := newTestFleet(t, UnknownLocal, false, func(o *buildOptions) { o.HostRoot, o.GRUBTFTPOnly = "/", tftpOnly })
		out, d, err := f.menu(mustMAC(t, macWeb), bootmenu.GRUB)
		require.NoError(t, err)
		require.Equal(t, ActInstall, d.Action)
		module := f.loaders.Has(bootmenu.LoaderGRUBHTTPMod)
		if tftpOnly || !module {
			assert.NotContains(t, string(out), "pxekit_http", "tftpOnly=%v module=%v", tftpOnly, module)
		} else {
			assert.Contains(t, string(out), "pxekit_http")
		}
	}
}
