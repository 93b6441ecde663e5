package main

import (
	"bytes"
	"context"
	"flag"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/examples/fleet/power"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestWriteTableGolden(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
	st := Status{Now: now, Hosts: []HostStatus{
		{Hostname: "web01", MAC: macWeb, Profile: "debian12", OS: "debian-12", IP: "10.0.0.11", Listed: true,
			Next: ActLocal, State: Booted, Stage: StageBooted, Since: ago(5 * time.Minute), Detail: "booted report from 10.0.0.11",
			Report: &Report{Report: answerfile.Report{Status: "ok", Checks: []Check{{Name: "user ops", OK: true}}}},
			Boot:   &Report{Report: answerfile.Report{Stage: "booted", Status: "ok", Checks: []Check{{Name: "sshd listening", OK: true}}}}},
		{Hostname: "web02", MAC: "52:54:00:f1:00:06", Profile: "debian12", OS: "debian-12", IP: "10.0.0.16", Listed: true,
			Next: ActLocal, State: Installed, Stage: StageInstalled, Since: ago(45 * time.Minute), Detail: "installed report from 10.0.0.16",
			Overdue: true, Report: &Report{Report: answerfile.Report{Status: "ok"}}},
		{Hostname: "db01", MAC: macDB, Profile: "debian12", OS: "debian-12", IP: "10.0.0.12", Listed: true,
			Next: ActLocal, State: Failed, Stage: StageFailed, Since: ago(90 * time.Second),
			Report: &Report{Report: answerfile.Report{Status: "failed", Checks: []Check{{Name: "service nginx"}, {Name: "user ops", OK: true}, {Name: "package postgresql"}}}}},
		{Hostname: "app01", MAC: macApp, Profile: "debian11", OS: "debian-11", IP: "10.0.0.13", Listed: true,
			Next: ActInstall, State: Installing, Stage: StageAnswer, Since: ago(2 * time.Second), Detail: "hosts/52-54-00-f1-00-03/preseed.cfg"},
		{Hostname: "cache01", MAC: "52:54:00:f1:00:04", Profile: "debian12", Listed: true,
			Next: ActLocal, State: Failed, Stage: StageFailed, Since: ago(time.Hour),
			// Check names come from the spec, in any language: a cut must
			// not split a character.
			Report: &Report{Report: answerfile.Report{Status: "failed", Checks: []Check{{Name: "служба веб-сервера nginx запущена и отвечает"}}}}},
		{Hostname: "new01", MAC: "52:54:00:f1:00:05", Profile: "debian12", Listed: true, Next: ActInstall, State: Pending,
			Power: &PowerStatus{BMC: "10.0.1.15", State: power.StateOn, Action: "power-cycle",
				Note: "the BMC refused the network boot override; powered anyway (the firmware's boot order decides)"}},
		{Hostname: "new02", MAC: "52:54:00:f1:00:07", Profile: "debian12", Listed: true, Next: ActInstall, State: Pending,
			Power: &PowerStatus{BMC: "10.0.1.17", Action: "running", Error: "power: BMC rejected the credentials: bmc 10.0.1.17: login refused"}},
		{Hostname: macNew, MAC: macNew, Next: ActMenu, State: Pending, Stage: StageMenu, Since: ago(0),
			Detail: "grub/grub.cfg-01-52-54-00-99-00-09 (menu)"},
	}}
	var b bytes.Buffer
	writeTable(&b, st)
	assert.True(t, utf8.Valid(b.Bytes()), "a terminal shows the table; it must stay valid UTF-8:\n%s", b.String())

	golden := filepath.Join("testdata", "table.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./examples/fleet -run TestWriteTableGolden -update")
	assert.Equal(t, string(want), b.String())

	// Without -power (no host has a power status) the power columns stay
	// out, and the rest of each row is the same.
	for i := range st.Hosts {
		st.Hosts[i].Power = nil
	}
	b.Reset()
	writeTable(&b, st)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, len(st.Hosts)+1)
	assert.Regexp(t, `^HOST +MAC +PROFILE +IP +STAGE +SINCE +STATE +NEXT BOOT +DETAIL$`, lines[0])
	assert.NotContains(t, b.String(), "POWER")
	assert.Regexp(t, `^new02 +52:54:00:f1:00:07 +debian12 +waiting +pending +install *$`, lines[7])
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr data-mac="([^"]+)">(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRE  = regexp.MustCompile(`<[^>]+>`)
	headRE = regexp.MustCompile(`<th>([^<]*)</th>`)
)

// visibleRows reads the hosts table of a rendered page as a person reads
// it: each row's cells by column heading, tags gone, spaces collapsed.
func visibleRows(t *testing.T, dom string) map[string]map[string]string {
	t.Helper()
	var heads []string
	for _, m := range headRE.FindAllStringSubmatch(dom, -1) {
		heads = append(heads, m[1])
	}
	require.NotEmpty(t, heads, dom)
	rows := map[string]map[string]string{}
	for _, r := range rowRE.FindAllStringSubmatch(dom, -1) {
		cells := cellRE.FindAllStringSubmatch(r[2], -1)
		require.Len(t, cells, len(heads), r[0])
		row := map[string]string{}
		for i, c := range cells {
			row[heads[i]] = strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(c[1], ""))), " ")
		}
		rows[r[1]] = row
	}
	return rows
}

func TestStatusPageInChromium(t *testing.T) {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s is not installed (apt-get install chromium): the status page is checked in a real browser", chromium)
	}
	needTool(t, "curl")
	s := startServer(t, writeInventory(t, UnknownMenu))

	// web01 installed and booted, db01 installed with a failed check,
	// app01 is installing, and a machine nobody listed sits at its menu.
	reports := map[string]string{}
	for _, mac := range []string{macWeb, macDB, macApp} {
		code, out := httpGet(t, answerURL(t, s, mac, ""))
		require.Equal(t, 200, code, out)
		reports[mac] = reportURL(t, out)
		waitStage(t, s, mac, "answer")
	}
	for _, r := range []struct{ mac, body string }{
		{macWeb, reportJSON("web01", "ok", map[string]bool{"user ops": true, "package nginx": true})},
		{macWeb, `{"stage":"booted","hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"sshd listening","ok":true}]}`},
		{macDB, reportJSON("db01", "failed", map[string]bool{"user ops": true, "service nginx": false})},
	} {
		code, out := httpDo(t, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", r.body, reports[r.mac])
		require.Equal(t, 204, code, out)
	}
	_, err := tftpGet(t, s, "grub/grub.cfg-01-"+macPath(macNew))
	require.NoError(t, err)

	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	browse := func(ctx context.Context, mode string, args ...string) ([]byte, error) {
		all := append([]string{"--headless", "--no-sandbox", "--disable-gpu",
			"--user-data-dir=" + filepath.Join(dir, "profile-"+mode)}, args...)
		cmd := exec.CommandContext(ctx, chromium, append(all, s.http+"status")...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			t.Logf("chromium %s stderr:\n%s", mode, errb.String())
		}
		return out, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Two browsers at once: each takes seconds to start.
	shotErr := make(chan error, 1)
	go func() {
		_, err := browse(ctx, "shot", "--screenshot="+shot, "--window-size=1400,600", "--hide-scrollbars")
		shotErr <- err
	}()
	dom, err := browse(ctx, "dom", "--dump-dom")
	require.NoError(t, err)
	require.NoError(t, <-shotErr)

	page := string(dom)
	assert.Contains(t, page, "<title>pxekit fleet</title>")
	rows := visibleRows(t, page)
	require.Len(t, rows, 4, "three listed hosts and the unknown MAC seen:\n%s", page)
	for _, tc := range []struct {
		mac  string
		want map[string]string
	}{
		{macWeb, map[string]string{"Host": "web01", "Profile": "debian12 (debian-12)", "Stage": "booted booted report from 127.0.0.1",
			"Install state": "booted", "Next boot": "local", "Checks": "2 run, 1 at boot"}},
		{macDB, map[string]string{"Host": "db01", "Stage": "failed installed report from 127.0.0.1",
			"Install state": "failed", "Next boot": "local", "Checks": "2 run; failed: service nginx"}},
		{macApp, map[string]string{"Host": "app01", "Profile": "debian11 (debian-11)", "Stage": "answer hosts/52-54-00-f1-00-03/preseed.cfg",
			"Install state": "installing", "Next boot": "install", "Checks": ""}},
		{macNew, map[string]string{"Host": macNew + " (not listed)", "MAC": macNew, "Profile": "",
			"Stage": "menu grub/grub.cfg-01-52-54-00-99-00-09 (menu)", "Install state": "pending", "Next boot": "menu"}},
	} {
		row := rows[tc.mac]
		require.NotNil(t, row, tc.mac)
		for col, want := range tc.want {
			assert.Equal(t, want, row[col], "%s, column %s", tc.mac, col)
		}
		assert.Regexp(t, `^\d+s ago$`, row["Since"], tc.mac)
	}
	assert.Contains(t, rows[macDB]["Timeline"], "answer")
	assert.Contains(t, rows[macDB]["Timeline"], "→ failed")
	counts := strings.Join(strings.Fields(tagRE.ReplaceAllString(regexp.MustCompile(`(?s)<div class="counts">.*?</div>`).FindString(page), " ")), " ")
	assert.Equal(t, "answer: 1 booted: 1 failed: 1 menu: 1", counts)

	// The screenshot is what a person sees: the page, and its green "booted"
	// and red "failed" badges.
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 1400, img.Bounds().Dx())
	assert.Equal(t, 600, img.Bounds().Dy())
	found := map[string]bool{}
	colours := map[string][3]uint32{"booted": {0xc8, 0xef, 0xc8}, "failed": {0xf6, 0xc4, 0xc4}, "installing": {0xfd, 0xe8, 0xb0}}
	near := func(a, b uint32) bool { return a+3 >= b && b+3 >= a }
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			for name, c := range colours {
				if near(r>>8, c[0]) && near(g>>8, c[1]) && near(b>>8, c[2]) {
					found[name] = true
				}
			}
		}
	}
	for name := range colours {
		assert.True(t, found[name], "no %s badge colour in the screenshot (kept at %s)", name, shot)
	}
	if t.Failed() {
		_ = os.WriteFile(filepath.Join(os.TempDir(), "pxekit-fleet-status.png"), mustRead(t, shot), 0o644)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}
