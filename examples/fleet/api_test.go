package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
)

// call is one in-process request to the fleet's HTTP handler.
type call struct {
	method, target, from string
	header               map[string]string
	body                 string
}

func (c call) do(h http.Handler) *httptest.ResponseRecorder {
	r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
	r.RemoteAddr = c.from
	if r.RemoteAddr == "" {
		r.RemoteAddr = "10.0.0.9:1000"
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// The reinstall API wipes disks at their next boot, and reports write
// state: who may call them is part of the gate.
func TestAPIAccess(t *testing.T) {
	f, store := newTestFleet(t, UnknownLocal, false)
	h := f.HTTPHandler()
	reinstall := "/api/hosts/web01/reinstall"
	hdr := map[string]string{ReinstallHeader: "1"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name, from string
		header     map[string]string
		token      string
		want       int
	}{
		{"loopback needs no token", "127.0.0.1:4000", hdr, "s3cret", http.StatusOK},
		{"loopback v6", "[::1]:4000", hdr, "", http.StatusOK},
		{"loopback, JSON instead of the header", "127.0.0.1:4000", with("Content-Type", "application/json"), "", http.StatusOK},
		{"network with the token", "10.0.0.7:4000", with(ReinstallHeader, "1", "Authorization", "Bearer s3cret"), "s3cret", http.StatusOK},
		{"network, wrong token", "10.0.0.7:4000", with(ReinstallHeader, "1", "Authorization", "Bearer nope"), "s3cret", http.StatusUnauthorized},
		{"network, no header", "10.0.0.7:4000", hdr, "s3cret", http.StatusUnauthorized},
		{"network, server without token", "10.0.0.7:4000", with(ReinstallHeader, "1", "Authorization", "Bearer s3cret"), "", http.StatusForbidden},
		// Row 14: a page in the operator's browser on the server.
		{"cross-site form post", "127.0.0.1:4000", with("Content-Type", "application/x-www-form-urlencoded", "Origin", "http://evil.example"), "", http.StatusForbidden},
		{"same-host form post", "127.0.0.1:4000", with("Content-Type", "application/x-www-form-urlencoded", ReinstallHeader, "1"), "", http.StatusForbidden},
		{"text/plain post", "127.0.0.1:4000", with("Content-Type", "text/plain", ReinstallHeader, "1"), "", http.StatusForbidden},
		{"multipart post", "127.0.0.1:4000", with("Content-Type", "multipart/form-data; boundary=x"), "", http.StatusForbidden},
		{"no-cors fetch", "127.0.0.1:4000", with("Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"), "", http.StatusForbidden},
		{"same-site but other origin", "127.0.0.1:4000", with("Sec-Fetch-Site", "same-site", ReinstallHeader, "1"), "", http.StatusForbidden},
		{"other origin with the header", "127.0.0.1:4000", with("Origin", "http://evil.example", ReinstallHeader, "1"), "", http.StatusForbidden},
		{"neither header nor JSON", "127.0.0.1:4000", nil, "", http.StatusForbidden},
		{"same origin", "127.0.0.1:4000", with("Origin", "http://example.com", "Sec-Fetch-Site", "same-origin", ReinstallHeader, "1"), "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.apiToken = tc.token
			before, _ := store.Get(macWeb)
			w := call{method: http.MethodPost, target: reinstall, from: tc.from, header: tc.header}.do(h)
			assert.Equal(t, tc.want, w.Code, w.Body.String())
			after, _ := store.Get(macWeb)
			if tc.want != http.StatusOK {
				assert.Equal(t, before, after, "a refused call changes nothing")
			} else {
				assert.NotContains(t, w.Body.String(), after.Token, "the answer carries no token")
			}
		})
	}
}

// Row 7: reports need the host's token, are taken once per stage, and
// are bounded.
func TestReportNeedsToken(t *testing.T) {
	f, store := newTestFleet(t, UnknownLocal, false)
	h := f.HTTPHandler()
	web := mustMAC(t, macWeb)
	tok := f.gate.Token(web)
	report := `{"hostname":"x","os":"debian-12","status":"ok","checks":[]}`
	post := func(path, body string) *httptest.ResponseRecorder {
		return call{method: http.MethodPost, target: path, body: body, header: map[string]string{"Content-Type": "application/json"}}.do(h)
	}
	unchanged := func() {
		t.Helper()
		r, _ := store.Get(macWeb)
		assert.Equal(t, Pending, r.State)
		assert.Nil(t, r.Report)
	}
	for _, path := range []string{
		"/api/report/" + macPath(macWeb),
		"/api/report/" + macPath(macWeb) + "/",
		"/api/report/" + macPath(macWeb) + "/" + strings.Repeat("0", 32),
		"/api/report/" + macPath(macWeb) + "/" + tok[:31],
		"/api/report/" + macPath(macWeb) + "/" + tok + "x",
		"/api/report/" + macPath(macWeb) + "/" + f.gate.Token(mustMAC(t, macDB)), // another host's
	} {
		w := post(path, report)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed}, w.Code, path)
		assert.NotContains(t, w.Body.String(), tok, path)
		unchanged()
	}
	// A made-up MAC: no record, no status row.
	w := post("/api/report/52-54-00-de-ad-01/"+tok, report)
	assert.Equal(t, http.StatusForbidden, w.Code)
	_, seen := store.Get("52:54:00:de:ad:01")
	assert.False(t, seen)
	for _, row := range f.status().Hosts {
		assert.NotEqual(t, "52:54:00:de:ad:01", row.MAC, "a refused report adds no row")
	}

	// Bounded: a 900 KB hostname is refused whole; a long one within the
	// limit is cut, and control characters dropped.
	big := `{"hostname":"` + strings.Repeat("h", 900<<10) + `","status":"ok"}`
	w = post("/api/report/"+macPath(macWeb)+"/"+tok, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	assert.Less(t, w.Body.Len(), 200, "the refusal does not echo the body")
	unchanged()

	w = post("/api/report/"+macPath(macWeb)+"/"+tok, `{"hostname":"`+strings.Repeat("h", 300)+`","os":"debian-12\u001b[2J","status":"ok","checks":[{"name":"user\nops","ok":true}]}`)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	r, _ := store.Get(macWeb)
	assert.Equal(t, Installed, r.State)
	require.NotNil(t, r.Report)
	assert.Equal(t, "debian-12[2J", r.Report.OS)
	assert.Equal(t, "userops", r.Report.Checks[0].Name)
	assert.Equal(t, "web01", r.Hostname, "a listed host is named by the inventory")

	// A replay of the same stage: 409, nothing changes.
	w = post("/api/report/"+macPath(macWeb)+"/"+tok, `{"status":"failed","checks":[{"name":"x","ok":false}]}`)
	assert.Equal(t, http.StatusConflict, w.Code)
	again, _ := store.Get(macWeb)
	assert.Equal(t, r, again)

	// The first boot reports once.
	booted := `{"stage":"booted","hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"sshd listening","ok":true}]}`
	w = post("/api/report/"+macPath(macWeb)+"/"+tok, booted)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	r, _ = store.Get(macWeb)
	assert.Equal(t, Booted, r.State)
	w = post("/api/report/"+macPath(macWeb)+"/"+tok, booted)
	assert.Equal(t, http.StatusConflict, w.Code)

	// Re-armed: the old token is dead.
	_, err := f.gate.Reinstall("web01")
	require.NoError(t, err)
	w = post("/api/report/"+macPath(macWeb)+"/"+tok, report)
	assert.Equal(t, http.StatusForbidden, w.Code)
	unchanged()
}

// Row 9: 30 reports with a 900 KB hostname leave a small state file.
func TestReportsKeepStateSmall(t *testing.T) {
	f, store := newTestFleet(t, UnknownMenu, false)
	h := f.HTTPHandler()
	for i := 0; i < 30; i++ {
		mac := net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, byte(i)}
		body := `{"hostname":"` + strings.Repeat("h", 900<<10) + `","status":"ok"}`
		w := call{method: http.MethodPost, target: "/api/report/" + dashed(mac) + "/" + f.gate.Token(mac), body: body}.do(h)
		assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		body = `{"hostname":"` + strings.Repeat("h", 20<<10) + `","status":"ok"}`
		w = call{method: http.MethodPost, target: "/api/report/" + dashed(mac) + "/" + f.gate.Token(mac), body: body}.do(h)
		assert.Equal(t, http.StatusNoContent, w.Code)
	}
	st, err := os.Stat(store.path)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(64<<10), "30 hosts' state")
	t.Logf("state file after 30 reports with 900 KB and 20 KB hostnames: %d bytes", st.Size())
}

// Row 8: an answer file only with its token, only to the host's address
// when DHCP saw it, and only a GET with the token starts the install.
func TestAnswerNeedsTokenAndAddress(t *testing.T) {
	f, store := newTestFleet(t, UnknownLocal, false)
	h := f.HTTPHandler()
	web := mustMAC(t, macWeb)
	tok := f.gate.Token(web)
	own := "/hosts/" + macPath(macWeb) + "/" + tok + "/preseed.cfg"
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, target := range []string{
			"/hosts/" + macPath(macWeb) + "/preseed.cfg",
			"/hosts/" + macPath(macWeb) + "/" + strings.Repeat("a", 32) + "/preseed.cfg",
			"/hosts/" + macPath(macWeb) + "/" + f.gate.Token(mustMAC(t, macDB)) + "/preseed.cfg",
			"/hosts/" + macPath(macWeb) + "/" + tok[:16] + "/preseed.cfg",
			"/hosts/" + macPath(macWeb) + "/" + tok + "/",
		} {
			w := call{method: method, target: target}.do(h)
			assert.Equal(t, http.StatusNotFound, w.Code, "%s %s", method, target)
			assert.NotContains(t, w.Body.String(), "$6$", "no password hash")
			assert.NotContains(t, w.Body.String(), tok)
		}
	}
	_, seen := store.Get(macWeb)
	require.True(t, seen, "the token's record")
	r, _ := store.Get(macWeb)
	assert.Equal(t, Pending, r.State, "refused fetches change nothing")
	_, stepped := f.steps.last(macWeb)
	assert.False(t, stepped, "and record no step")

	// HEAD with the token: the file's size, but the install has not begun.
	w := call{method: http.MethodHead, target: own}.do(h)
	assert.Equal(t, http.StatusOK, w.Code)
	r, _ = store.Get(macWeb)
	assert.Equal(t, Pending, r.State)
	_, stepped = f.steps.last(macWeb)
	assert.False(t, stepped)

	// In proxy mode an ACK carries the client's own claim: no pin.
	f.DHCPEvent(dhcpsrv.Event{Type: dhcpsrv.EventAck, Client: dhcpsrv.Client{MAC: web}, IP: netip.MustParseAddr("10.0.0.66")})
	ok, _ := f.gate.AddrOK(web, netip.MustParseAddr("10.0.0.12"))
	assert.True(t, ok)
	// In full mode this server leased 10.0.0.11 to the host: from
	// elsewhere, nothing. A spoofed request does not move the pin.
	f.proxy = false
	f.DHCPEvent(dhcpsrv.Event{Type: dhcpsrv.EventAck, Client: dhcpsrv.Client{MAC: web}, IP: netip.MustParseAddr("10.0.0.11")})
	f.DHCPEvent(dhcpsrv.Event{Type: dhcpsrv.EventRequest, Client: dhcpsrv.Client{MAC: web}, IP: netip.MustParseAddr("10.0.0.12")})
	w = call{method: http.MethodGet, target: own, from: "10.0.0.12:5000"}.do(h)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.NotContains(t, w.Body.String(), "$6$")
	r, _ = store.Get(macWeb)
	assert.Equal(t, Pending, r.State)
	w = call{method: http.MethodGet, target: "/hosts/" + macPath(macWeb) + "/boot.ipxe", from: "10.0.0.12:5000"}.do(h)
	assert.Equal(t, http.StatusForbidden, w.Code, "the menu names the token: also pinned")
	assert.NotContains(t, w.Body.String(), tok)
	_, _, err := f.menu(web, bootmenu.GRUB)
	require.NoError(t, err)
	assert.Error(t, f.menuAllowed(web, netip.MustParseAddr("10.0.0.12"), f.gate.Decide(web)), "TFTP menus too")

	w = call{method: http.MethodGet, target: "/hosts/" + macPath(macWeb) + "/boot.ipxe", from: "10.0.0.11:5000"}.do(h)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), own)
	w = call{method: http.MethodGet, target: own, from: "10.0.0.11:5000"}.do(h)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), "netcfg/get_hostname string web01")
	assert.Contains(t, w.Body.String(), "api/report/"+macPath(macWeb)+"/"+tok, "the callback carries the token")
	r, _ = store.Get(macWeb)
	assert.Equal(t, Installing, r.State)
	last, _ := f.steps.last(macWeb)
	assert.Equal(t, "hosts/"+macPath(macWeb)+"/preseed.cfg", last.Detail, "the status page shows no token")
}

// Row 9: unknown MACs under the menu policy cost bounded memory and no
// state, however many there are.
func TestUnknownMenuBounded(t *testing.T) {
	f, store := newTestFleet(t, UnknownMenu, false)
	h := f.HTTPHandler()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 300
	for i := 0; i < n; i++ {
		mac := net.HardwareAddr{0x52, 0x54, 0, 0x88, byte(i >> 8), byte(i)}
		w := call{method: http.MethodGet, target: "/hosts/" + dashed(mac) + "/boot.ipxe"}.do(h)
		require.Equal(t, http.StatusOK, w.Code)
		if i%3 == 0 {
			// Some fetch their answer file too, with the menu's token.
			url := f.httpBase + "hosts/" + dashed(mac) + "/" + f.gate.Token(mac) + "/debian12/preseed.cfg"
			require.Contains(t, w.Body.String(), url)
			w = call{method: http.MethodGet, target: "/" + strings.TrimPrefix(url, f.httpBase)}.do(h)
			require.Equal(t, http.StatusOK, w.Code)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	f.mu.Lock()
	adhoc := len(f.adhoc)
	f.mu.Unlock()
	assert.LessOrEqual(t, adhoc, maxAdhoc)
	assert.Len(t, store.All(), 3, "the listed hosts only")
	assert.LessOrEqual(t, len(f.steps.all()), 3+maxRecent, "unknown MACs are followed, boundedly")
	rows := f.status().Hosts
	assert.LessOrEqual(t, len(rows), 3+maxRecent)
	t.Logf("%d unknown MACs (menus, %d answer files): heap %+d KB, %d renders kept, %d status rows",
		n, n/3, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024, adhoc, len(rows))
}

// The status page and table show installed -> booted, failures with the
// check, and hosts whose first boot is overdue.
func TestStatusBootedAndOverdue(t *testing.T) {
	f, _ := newTestFleet(t, UnknownLocal, false)
	now := time.Now()
	f.gate.now = func() time.Time { return now }
	f.gate.BootTimeout = 10 * time.Minute
	for mac, reps := range map[string][]Report{
		macWeb: {{Report: answerfile.Report{Status: "ok"}}, {Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "ok", Checks: []Check{{Name: "sshd listening", OK: true}}}}},
		macDB:  {{Report: answerfile.Report{Status: "ok"}}, {Report: answerfile.Report{Stage: answerfile.StageBooted, Status: "failed", Checks: []Check{{Name: "sshd listening"}}}}},
		macApp: {{Report: answerfile.Report{Status: "ok"}}},
	} {
		for _, rep := range reps {
			_, err := f.gate.Reported(mustMAC(t, mac), rep)
			require.NoError(t, err)
		}
	}
	now = now.Add(11 * time.Minute)
	rows := map[string]HostStatus{}
	for _, r := range f.status().Hosts {
		rows[r.MAC] = r
	}
	assert.Equal(t, Booted, rows[macWeb].State)
	assert.Equal(t, "booted", rows[macWeb].StageName())
	assert.False(t, rows[macWeb].Overdue)
	assert.Equal(t, Failed, rows[macDB].State)
	assert.Equal(t, []string{"at boot: sshd listening"}, rows[macDB].FailedChecks())
	assert.Equal(t, Installed, rows[macApp].State)
	assert.True(t, rows[macApp].Overdue)
	assert.Equal(t, ActLocal, rows[macApp].Next)

	var b bytes.Buffer
	writeTable(&b, f.status())
	assert.Regexp(t, `app01 .* installed \(overdue\) +local +no booted report yet`, b.String())
	assert.Regexp(t, `db01 .* failed +local +failed: at boot: sshd listening`, b.String())

	w := call{method: http.MethodGet, target: "/status"}.do(f.HTTPHandler())
	assert.Contains(t, w.Body.String(), `installed <span class="overdue">no booted report yet</span>`)
	w = call{method: http.MethodGet, target: "/status.json"}.do(f.HTTPHandler())
	var st Status
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st))
	for _, h := range st.Hosts {
		assert.Equal(t, h.MAC == macApp, h.Overdue, h.MAC)
	}
	assert.NotContains(t, w.Body.String(), `"token"`)
	assert.NotContains(t, w.Body.String(), f.gate.Token(mustMAC(t, macWeb)))
}

// FuzzReportEndpoint posts any body to a listed host's report URL: the
// answer is one of the documented codes and what is kept is bounded.
func FuzzReportEndpoint(f *testing.F) {
	for _, s := range []string{
		`{"hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"user ops","ok":true}]}`,
		`{"stage":"booted","status":"failed","checks":[{"name":"sshd listening","ok":false}]}`,
		`{"event_type":"finish","name":"subiquity/Install","result":"SUCCESS"}`,
		`{"status":"unknown"}`, `{"status":`, `[]`, ``,
	} {
		f.Add([]byte(s), true)
	}
	// One fleet for every input, its state in memory and reset each time:
	// the report endpoint needs the inventory, the gate and the steps.
	inv, err := ParseInventory([]byte(testInventory("nb", UnknownLocal)), ".")
	require.NoError(f, err)
	store, err := OpenStore("")
	require.NoError(f, err)
	fl := &fleet{inv: inv, log: slog.New(slog.DiscardHandler), gate: NewGate(inv, store, nil),
		steps: &stepLog{log: slog.New(slog.DiscardHandler), now: time.Now, keep: func(string) bool { return true }}}
	h := fl.HTTPHandler()
	f.Fuzz(func(t *testing.T, body []byte, rightToken bool) {
		_, err := store.Update(macWeb, func(r *Record) { r.State, r.Report, r.Boot = Pending, nil, nil })
		require.NoError(t, err)
		mac := mustMAC(t, macWeb)
		tok := fl.gate.Token(mac)
		if !rightToken {
			tok = strings.Repeat("0", 32)
		}
		w := call{method: http.MethodPost, target: "/api/report/" + macPath(macWeb) + "/" + tok, body: string(body)}.do(h)
		switch w.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		r, _ := store.Get(macWeb)
		if !rightToken && (r.Report != nil || r.Boot != nil) {
			t.Fatal("a report without the token was kept")
		}
		data, _ := json.Marshal(r)
		if len(data) > 2*maxReport {
			t.Fatalf("record of %d bytes", len(data))
		}
		if w.Body.Len() > 300 {
			t.Fatalf("answer of %d bytes", w.Body.Len())
		}
		var st bytes.Buffer
		writeTable(&st, fl.status())
	})
}

// A file a client asked for and did not get is logged, without the
// host's token.
func TestHTTPNotServedLogged(t *testing.T) {
	var logs syncBuffer
	f, _ := newTestFleet(t, UnknownLocal, false, func(o *buildOptions) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	h := f.HTTPHandler()
	web := mustMAC(t, macWeb)
	tok := f.gate.Token(web)
	for _, target := range []string{"/hosts/" + macPath(macWeb) + "/" + tok + "/nothing.cfg", "/no/such/file"} {
		w := call{method: http.MethodGet, target: target}.do(h)
		assert.Equal(t, http.StatusNotFound, w.Code, target)
	}
	assert.Contains(t, logs.String(), `"http request not served" client=`)
	assert.Contains(t, logs.String(), "file=hosts/"+macPath(macWeb)+"/nothing.cfg status=404")
	assert.Contains(t, logs.String(), "file=no/such/file status=404")
	assert.NotContains(t, logs.String(), tok)
}
