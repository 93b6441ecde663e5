package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// TFTPHandler serves loaders, per-host menus and profile media over TFTP.
func (f *fleet) TFTPHandler() tftpsrv.Handler {
	files := tftpsrv.FileServer(f.served)
	return tftpsrv.HandlerFunc(func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		req, err := bootmenu.ParseConfigName(r.Name)
		if err != nil {
			files.ServeTFTP(w, r)
			return
		}
		mac := f.macFor(req.MAC, r.RemoteAddr.Addr())
		out, d, err := f.menu(mac, req.Kind)
		if err == nil {
			err = f.menuAllowed(mac, r.RemoteAddr.Addr(), d)
		}
		if err != nil {
			f.log.Info("menu refused", "name", r.Name, "mac", macString(mac), "why", err.Error())
			w.Error(&tftpsrv.Error{Code: tftpsrv.ErrCodeAccessViolation, Message: "not served to this client"})
			return
		}
		f.observeMenu(r.Context(), mac, r.RemoteAddr.Addr(), r.Name, d, "tftp")
		w.ServeContent(bytes.NewReader(out), int64(len(out)))
	})
}

func macString(mac net.HardwareAddr) string {
	if mac == nil {
		return "unknown"
	}
	return mac.String()
}

// TFTPEvent reports completed TFTP transfers as client steps.
func (f *fleet) TFTPEvent(ev tftpsrv.Event) {
	if !ev.Served() {
		// A refused or broken transfer is not a step reached; the TFTP
		// server has logged it.
		return
	}
	st, ok := f.stage(ev.Name)
	if !ok || st == StageMenu {
		return // menus are reported when decided, with the decision
	}
	ip := ev.RemoteAddr.Addr().Unmap()
	f.observe(context.Background(), f.macFor(nil, ip), ip, st, ev.Name,
		slog.String("proto", "tftp"), slog.String("ip", ip.String()), slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration))
}

// DHCPEvent binds MACs to addresses and reports DHCP steps. A lease this
// server acknowledged (full mode) pins the MAC's install menus and answer
// files to that address: the server chose it for the MAC, so a spoofed
// request cannot move it elsewhere. In proxy mode the addresses are the
// clients' own claims, and nothing is pinned: the token alone guards.
func (f *fleet) DHCPEvent(ev dhcpsrv.Event) {
	if ev.Type == dhcpsrv.EventAck && !f.proxy {
		f.gate.Pin(ev.Client.MAC, ev.IP)
	}
	if f.inv.host(ev.Client.MAC) == nil && f.inv.Unknown == UnknownIgnore {
		return // an ignored MAC leaves no trace
	}
	f.bindings.Observe(ev)
	if ev.Type != dhcpsrv.EventOffer && ev.Type != dhcpsrv.EventAck {
		return
	}
	// An OFFER's address is not the host's yet (it may take another
	// server's), and a proxy client's option 50 in a DISCOVER is a wish:
	// only an ACK gives the status page an address.
	var ip netip.Addr
	if ev.Type == dhcpsrv.EventAck {
		if ip = ev.IP; !ip.IsValid() || ip.IsUnspecified() {
			ip = ev.Client.RequestedIP
		}
	}
	attrs := []slog.Attr{slog.String("msg", string(ev.Type)), slog.String("arch", ev.Client.Arch.String())}
	if ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
	}
	f.observe(context.Background(), ev.Client.MAC, ip, StageDHCP, ev.BootFile, attrs...)
}

// HTTPHandler is the fleet's HTTP side: files, per-host scripts and
// answers, the installer reports, the operator API and the status page.
// The state guard runs inside the step log (HTTPEvent), so that an answer
// file it withholds (503) is not logged as served.
func (f *fleet) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", f.serveStatusHTML)
	mux.HandleFunc("GET /status.json", f.serveStatusJSON)
	mux.HandleFunc("POST /api/report/{mac}/{token}", f.serveReport)
	mux.HandleFunc("POST /api/report/{mac}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "pxekit: a report URL carries the host's token: post to the callback URL of its answer file", http.StatusBadRequest)
	})
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "pxekit: the API takes POST", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("POST /api/hosts/{host}/reinstall", f.serveReinstall)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/status", http.StatusFound) })
	mux.HandleFunc("GET /boot.ipxe", func(w http.ResponseWriter, r *http.Request) {
		// Any iPXE (one that got boot.ipxe from another DHCP server, say)
		// chains to its own host's script.
		serveBytes(w, r, "boot.ipxe", []byte("#!ipxe\n# pxekit fleet: every host has its own script\nchain "+f.httpBase+"hosts/${mac:hexhyp}/boot.ipxe\n"))
	})
	for _, pm := range f.profiles {
		for _, sub := range []string{"iso/", "boot/", "image.iso"} {
			mux.Handle("GET /"+pm.media.Prefix+sub, pm.media.Handler())
		}
	}
	files := isosrc.FileServer(f.served)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if strings.HasPrefix(name, "hosts/") {
			f.serveHostFile(w, r, name)
			return
		}
		if req, err := bootmenu.ParseConfigName(name); err == nil {
			// GRUB loaded over HTTP asks for its menu over HTTP.
			f.serveMenu(w, r, name, f.macFor(req.MAC, clientIP(r)), req.Kind)
			return
		}
		files.ServeHTTP(w, r)
	})
	return isosrc.Observe(f.guardState(mux), f.HTTPEvent)
}

// clientIP is the request's remote address.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// HTTPEvent reports the files a client received whole (menus are
// reported when decided) as its steps: a refused answer file is not a step.
func (f *fleet) HTTPEvent(ev isosrc.HTTPEvent) {
	if (ev.Status == http.StatusNotFound || ev.Err != nil) && ev.Request.Method == http.MethodGet && !strings.HasPrefix(ev.Name, "api/") {
		// What a client asked for and did not get (refusals are logged
		// where they are decided), as the TFTP server logs its own.
		f.log.Info("http request not served", "client", ev.RemoteAddr.String(), "file", redactToken(ev.Name), "status", ev.Status, "bytes", ev.Bytes, "err", fmt.Sprint(ev.Err))
		return
	}
	st, ok := f.stage(ev.Name)
	if !ok || st == StageMenu || !ev.Served() || ev.Request.Method != http.MethodGet {
		return
	}
	// An answer file's name carries its MAC, which beats the address:
	// NAT, a relay or a reused lease share addresses.
	ip := ev.RemoteAddr.Addr()
	attrs := []slog.Attr{slog.String("proto", "http"), slog.String("ip", ip.String()), slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration)}
	macPart, _, _ := strings.Cut(strings.TrimPrefix(ev.Name, "hosts/"), "/")
	if mac, ok := parseMAC(macPart); ok && strings.HasPrefix(ev.Name, "hosts/") {
		f.observe(ev.Request.Context(), mac, ip, st, redactToken(ev.Name), attrs...)
	} else if ip.IsValid() {
		f.observe(ev.Request.Context(), f.macFor(nil, ip), ip, st, ev.Name, attrs...)
	}
}

// serveHostFile serves hosts/MAC/...: the host's iPXE script (its menu)
// or, below hosts/MAC/TOKEN/, its answer files, as the gate allows. A
// wrong token is a plain 404 that changes nothing; the right one from an
// address other than the one DHCP saw the host use is a 403.
func (f *fleet) serveHostFile(w http.ResponseWriter, r *http.Request, name string) {
	macPart, file, _ := strings.Cut(strings.TrimPrefix(name, "hosts/"), "/")
	mac, ok := parseMAC(macPart)
	if ok && file == "boot.ipxe" {
		f.serveMenu(w, r, name, mac, bootmenu.IPXE)
		return
	}
	tok, file, _ := strings.Cut(file, "/")
	if !ok || file == "" || !f.gate.TokenOK(mac, tok) {
		http.NotFound(w, r)
		return
	}
	// (A wrong address is told so: it has shown it knows the token.)
	if ok, pinned := f.gate.AddrOK(mac, clientIP(r)); !ok {
		f.log.Warn("answer file refused: not the host's address", "mac", mac.String(), "from", clientIP(r).String(), "dhcp_address", pinned.String())
		http.Error(w, "pxekit: not served to this address", http.StatusForbidden)
		return
	}
	data, err := f.answer(mac, file, r.Method == http.MethodGet)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
	case errors.Is(err, ErrNotAllowed):
		f.log.Warn("answer file refused", "mac", mac.String(), "file", file, "why", err.Error())
		http.Error(w, "pxekit: "+err.Error(), http.StatusForbidden)
	case err != nil:
		f.log.Error("answer file", "mac", mac.String(), "error", err)
		http.Error(w, "pxekit: cannot render the answer file; see the server log", http.StatusInternalServerError)
	default:
		serveBytes(w, r, file, data)
	}
}

// redactToken drops the token from a served name (hosts/MAC/TOKEN/x ->
// hosts/MAC/x), for logs and the status page.
func redactToken(name string) string {
	rest, ok := strings.CutPrefix(name, "hosts/")
	if !ok {
		return name
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) == 3 && isToken(parts[1]) {
		return "hosts/" + parts[0] + "/" + parts[2]
	}
	return name
}

func isToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// menuAllowed refuses a menu that carries install tokens to an address
// other than the one DHCP saw mac use.
func (f *fleet) menuAllowed(mac net.HardwareAddr, ip netip.Addr, d Decision) error {
	if mac == nil || (d.Action != ActInstall && d.Action != ActMenu) {
		return nil
	}
	if ok, pinned := f.gate.AddrOK(mac, ip); !ok {
		return fmt.Errorf("%w: install menu of %s asked from %s, DHCP saw it at %s", ErrNotAllowed, mac, ip, pinned)
	}
	return nil
}

// serveMenu answers with the menu the gate gives mac, or 403 and why.
func (f *fleet) serveMenu(w http.ResponseWriter, r *http.Request, name string, mac net.HardwareAddr, kind bootmenu.Kind) {
	out, d, err := f.menu(mac, kind)
	if err != nil {
		http.Error(w, "pxekit: "+d.Why, http.StatusForbidden)
		return
	}
	if err := f.menuAllowed(mac, clientIP(r), d); err != nil {
		f.log.Warn("menu refused", "name", name, "why", err.Error())
		http.Error(w, "pxekit: not served to this address", http.StatusForbidden)
		return
	}
	f.observeMenu(r.Context(), mac, clientIP(r), name, d, "http")
	serveBytes(w, r, name, out)
}

func serveBytes(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	w.Header().Set("Cache-Control", "no-store") // per host and per state: never cache
	if path.Ext(name) == ".ipxe" || strings.HasSuffix(name, ".cfg") || path.Base(name) == "user-data" || path.Base(name) == "meta-data" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(data))
}

// maxReport bounds a report body: hundreds of checks fit.
const maxReport = 32 << 10

// serveReport takes a report (or an Ubuntu installer progress event) at
// api/report/MAC/TOKEN. Nothing is recorded, not even a status row, before
// the token is checked.
func (f *fleet) serveReport(w http.ResponseWriter, r *http.Request) {
	ip, mac, err := answerfile.ReportSender(r)
	if err != nil {
		http.Error(w, "pxekit: "+strings.TrimPrefix(err.Error(), "answerfile: "), http.StatusBadRequest)
		return
	}
	if !f.gate.Expecting(mac) || !f.gate.TokenOK(mac, r.PathValue("token")) {
		// The same answer for a made-up MAC and a wrong token.
		http.Error(w, "pxekit: no install of "+mac.String()+" with this token", http.StatusForbidden)
		return
	}
	rep, err := answerfile.ParseReport(http.MaxBytesReader(w, r.Body, maxReport), maxReport)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, answerfile.ErrReportTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "pxekit: "+strings.TrimPrefix(err.Error(), "answerfile: "), code)
		return
	}
	if ev := rep.Event; ev != nil {
		// An installer progress event, not the end.
		f.observe(r.Context(), mac, ip, StageInstalling, ev.String(), slog.String("proto", "report"))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	kept := Report{Report: *rep}
	if ip.IsValid() {
		kept.From = ip.String()
	}
	rec, err := f.gate.Reported(mac, kept)
	switch {
	case errors.Is(err, ErrReplay):
		http.Error(w, "pxekit: stage "+kept.Stage+" of this install was reported already", http.StatusConflict)
		return
	case errors.Is(err, ErrFull):
		f.log.Warn("report refused", "mac", mac.String(), "error", err)
		http.Error(w, "pxekit: "+err.Error(), http.StatusServiceUnavailable)
		return
	case errors.Is(err, ErrStateUnavailable):
		// The store says once a minute that it is unreachable; the
		// reporter retries (every answer file's callback does).
		http.Error(w, "pxekit: install state unavailable, try again", http.StatusServiceUnavailable)
		return
	case err != nil:
		// Not acknowledged: the reporter's request fails and nothing
		// claims the host is installed.
		f.log.Error("report not saved", "mac", mac.String(), "error", err)
		http.Error(w, "pxekit: report not saved", http.StatusInternalServerError)
		return
	}
	st := Stage(rec.State)
	attrs := []slog.Attr{slog.String("stage", kept.Stage), slog.String("status", kept.Status), slog.Int("checks", len(kept.Checks))}
	if failed := rep.Failed(); len(failed) > 0 {
		attrs = append(attrs, slog.String("failed_checks", strings.Join(failed, ", ")))
	}
	f.observe(r.Context(), mac, ip, st, kept.Stage+" report from "+kept.From, attrs...)
	w.WriteHeader(http.StatusNoContent)
}

// ReinstallHeader is the request header the reinstall API wants (any
// value) unless the request is JSON: a browser sends neither across sites
// without the server's consent (CORS preflight), so a page cannot re-arm
// hosts from the operator's browser.
const ReinstallHeader = "X-Pxekit-Request"

// crossSite says why a request may come from another site's page, or "".
func crossSite(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return "Origin " + o + " is not this server"
		}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return "form content type " + ct
	}
	if ct != "application/json" && r.Header.Get(ReinstallHeader) == "" {
		return "neither JSON nor the " + ReinstallHeader + " header"
	}
	return ""
}

func (f *fleet) serveReinstall(w http.ResponseWriter, r *http.Request) {
	if why := crossSite(r); why != "" {
		http.Error(w, "pxekit: refused ("+why+"); send the header "+ReinstallHeader+": 1", http.StatusForbidden)
		return
	}
	// Re-arming wipes a disk at its next network boot: from this machine
	// anyone may, from the network only with the token.
	ip := clientIP(r)
	if !ip.IsLoopback() {
		if f.apiToken == "" {
			http.Error(w, "pxekit: the reinstall API answers only on this machine (127.0.0.1) unless the server runs with -api-token", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(f.apiToken)) != 1 {
			http.Error(w, "pxekit: wrong or missing token (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
			return
		}
	}
	rec, err := f.gate.Reinstall(r.PathValue("host"))
	if err != nil {
		http.Error(w, "pxekit: "+err.Error(), http.StatusNotFound)
		return
	}
	// With -power the host is also network-booted through its BMC, in
	// the background: a BMC may take a minute, the caller need not.
	resp := struct {
		Record
		Power string `json:"power,omitempty"`
	}{Record: rec.public()}
	if f.power != nil {
		resp.Power = f.power.queue(f.inv.hostByName(rec.MAC))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// observe records a step of mac (nil: unknown, logged only); a listed or
// known host's address is bound to it, for its syslog lines.
func (f *fleet) observe(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, st Stage, detail string, attrs ...slog.Attr) {
	if mac != nil && f.steps.keep(mac.String()) {
		f.bindings.Bind(mac, ip)
	}
	f.steps.add(ctx, mac, ip, st, detail, attrs...)
}

// observeMenu reports a menu served, with what it leads to.
func (f *fleet) observeMenu(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, name string, d Decision, proto string) {
	attrs := []slog.Attr{slog.String("proto", proto), slog.String("next", string(d.Action))}
	if ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
	}
	f.observe(ctx, mac, ip, StageMenu, name+" ("+string(d.Action)+")", attrs...)
}

// answerDir is where mac's current install serves its answer files:
// hosts/MAC/TOKEN/.
func (f *fleet) answerDir(mac net.HardwareAddr) string {
	return hostDir(mac) + f.gate.Token(mac) + "/"
}

// reportURL is the callback URL of mac's current install.
func (f *fleet) reportURL(mac net.HardwareAddr) string {
	return f.httpBase + "api/report/" + dashed(mac) + "/" + f.gate.Token(mac)
}

// hostPrepared returns a listed host's install, rendered again when its
// token changed (re-armed) since it was rendered.
func (f *fleet) hostPrepared(mac net.HardwareAddr) (*install, error) {
	h := f.inv.host(mac)
	if h == nil {
		return nil, fs.ErrNotExist
	}
	dir := f.answerDir(mac)
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.hosts[mac.String()]
	if p != nil && strings.HasPrefix(p.url, f.httpBase+dir) {
		return p, nil
	}
	pm := f.profiles[h.Profile]
	if pm == nil || h.spec == nil {
		return nil, fs.ErrNotExist
	}
	p, err := f.prepare(pm, h.spec, mac, dir)
	if err != nil {
		return nil, err
	}
	f.hosts[mac.String()] = p
	return p, nil
}

// maxAdhoc bounds the installs rendered for unknown MACs (menu policy):
// a render is a few tens of KB, and anyone can name any MAC.
const maxAdhoc = 64

// adhocPrepared renders what an unknown MAC installs when a person picks
// profile pm from the menu, keeping at most maxAdhoc renders.
func (f *fleet) adhocPrepared(pm *profileMedia, mac net.HardwareAddr) (*install, error) {
	dir := f.answerDir(mac) + pm.name + "/"
	key := dir
	f.mu.Lock()
	p, ok := f.adhoc[key]
	f.mu.Unlock()
	if ok {
		return p, nil
	}
	spec, err := f.inv.unknownSpec(f.inv.Profiles[pm.name], mac)
	if err != nil {
		return nil, err
	}
	if p, err = f.prepare(pm, spec, mac, dir); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.adhoc {
		if len(f.adhoc) < maxAdhoc {
			break
		}
		delete(f.adhoc, k) // any one: an old render costs only a render again
	}
	f.adhoc[key] = p
	return p, nil
}

// answer returns a host's answer file by served name below
// hosts/MAC/TOKEN/ (the caller checked the token), if the gate lets it
// have one. Only a GET of an answer file (not meta-data, not a HEAD)
// marks the install started.
func (f *fleet) answer(mac net.HardwareAddr, rest string, get bool) ([]byte, error) {
	d := f.gate.Decide(mac)
	name := f.answerDir(mac) + rest
	var p *install
	var err error
	switch d.Action {
	case ActInstall:
		p, err = f.hostPrepared(mac)
	case ActMenu:
		pname, _, _ := strings.Cut(rest, "/")
		pm := f.profiles[pname]
		if pm == nil {
			return nil, fs.ErrNotExist
		}
		p, err = f.adhocPrepared(pm, mac)
	default:
		return nil, fmt.Errorf("%w: %s: %s", ErrNotAllowed, f.hostname(mac), d.Why)
	}
	if err != nil {
		return nil, err
	}
	pk, ok := p.answers[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	data, err := f.packer.unpack(pk)
	if err != nil {
		return nil, err
	}
	if get && !strings.HasSuffix(name, "meta-data") {
		f.gate.AnswerServed(mac, f.installHostname(mac))
	}
	return data, nil
}

// installHostname is the hostname an install gives the machine.
func (f *fleet) installHostname(mac net.HardwareAddr) string {
	if h := f.inv.host(mac); h != nil {
		return h.Hostname
	}
	return "pxe-" + strings.ReplaceAll(mac.String(), ":", "")
}
