package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/examples/internal/chain"
	"github.com/pxekit/pxekit/internal/progress"
	"github.com/pxekit/pxekit/tftpsrv"
)

// TFTPHandler serves loaders, per-host menus and profile media over TFTP.
func (f *fleet) TFTPHandler() tftpsrv.Handler {
	return tftpsrv.HandlerFunc(func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		if req, err := bootmenu.ParseConfigName(r.Name); err == nil {
			mac := f.macFor(req.MAC, r.RemoteAddr.Addr())
			out, d, err := f.menu(mac, req.Kind)
			if err != nil {
				f.log.Info("menu refused", "name", r.Name, "mac", macString(mac), "why", d.Why)
				w.Error(&tftpsrv.Error{Code: tftpsrv.ErrCodeAccessViolation, Message: "not served to this client"})
				return
			}
			f.observeMenu(r.Context(), mac, r.RemoteAddr.Addr(), r.Name, d, "tftp")
			w.ServeContent(bytes.NewReader(out), int64(len(out)))
			return
		}
		fsys, rel, ok := f.lookupFile(r.Name)
		if !ok {
			w.Error(fs.ErrNotExist)
			return
		}
		tftpsrv.FileServer(fsys).ServeTFTP(w, &tftpsrv.Request{
			Name: rel, RawName: r.RawName, RemoteAddr: r.RemoteAddr, LocalAddr: r.LocalAddr, Options: r.Options,
		})
	})
}

func macString(mac net.HardwareAddr) string {
	if mac == nil {
		return progress.Unknown
	}
	return mac.String()
}

// TFTPEvent reports completed TFTP transfers as client steps.
func (f *fleet) TFTPEvent(ev tftpsrv.Event) {
	if ev.Kind != tftpsrv.TransferEnd || ev.Probe {
		return
	}
	st, ok := f.stage(ev.Name)
	if !ok || st == progress.Menu {
		return // menus are reported when decided, with the decision
	}
	if ev.Err != nil {
		// A refused or broken transfer is not a step reached; the TFTP
		// server has logged it.
		return
	}
	f.tracker.ObserveIP(context.Background(), ev.RemoteAddr.Addr(), st, ev.Name,
		slog.String("proto", "tftp"), slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration))
}

// DHCPEvent binds MACs to addresses and reports DHCP steps.
func (f *fleet) DHCPEvent(ev dhcpsrv.Event) { chain.ObserveDHCP(f.tracker, ev) }

// HTTPHandler is the fleet's HTTP side: files, per-host scripts and
// answers, the installer reports, the operator API and the status page.
func (f *fleet) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", f.serveStatusHTML)
	mux.HandleFunc("GET /status.json", f.serveStatusJSON)
	mux.HandleFunc("POST /api/report/{mac}", f.serveReport)
	mux.HandleFunc("POST /api/hosts/{host}/reinstall", f.serveReinstall)
	mux.HandleFunc("GET /{path...}", f.serveFile)
	return mux
}

// clientIP is the request's remote address.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (f *fleet) serveFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if st, ok := f.stage(name); ok && st != progress.Menu {
		// Reported once served: a refused answer file is not a step.
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			ip := clientIP(r)
			if sw.code >= 400 {
				return
			}
			// An answer file's name carries its MAC, which beats the
			// address: NAT, a relay or a reused lease share addresses.
			macPart, _, _ := strings.Cut(strings.TrimPrefix(name, "hosts/"), "/")
			if mac, ok := parseMAC(macPart); ok && strings.HasPrefix(name, "hosts/") {
				f.tracker.Bind(mac.String(), ip)
				f.tracker.Observe(r.Context(), mac.String(), st, name, slog.String("proto", "http"), slog.String("ip", ip.String()))
			} else if ip.IsValid() {
				f.tracker.ObserveIP(r.Context(), ip, st, name, slog.String("proto", "http"))
			}
		}()
		w = sw
	}
	switch {
	case name == "":
		http.Redirect(w, r, "/status", http.StatusFound)
		return
	case name == "boot.ipxe":
		serveBytes(w, r, name, f.genericIPXE())
		return
	case strings.HasPrefix(name, "hosts/"):
		f.serveHostFile(w, r, name)
		return
	}
	if req, err := bootmenu.ParseConfigName(name); err == nil {
		// GRUB loaded over HTTP asks for its menu over HTTP.
		f.serveMenu(w, r, name, f.macFor(req.MAC, clientIP(r)), req.Kind)
		return
	}
	if file, ok := f.isoFile(name); ok {
		http.ServeFile(w, r, file)
		return
	}
	fsys, rel, ok := f.lookupFile(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + rel
	if rel != "" && strings.HasSuffix(r.URL.Path, "/") {
		r2.URL.Path += "/" // a directory asked as one; path.Clean dropped the slash
	}
	chain.FileHandler(fsys).ServeHTTP(w, r2)
}

// serveHostFile serves hosts/MAC/...: the host's iPXE script or its
// answer files, as the gate allows.
func (f *fleet) serveHostFile(w http.ResponseWriter, r *http.Request, name string) {
	rest := strings.TrimPrefix(name, "hosts/")
	macPart, file, _ := strings.Cut(rest, "/")
	mac, ok := parseMAC(macPart)
	if !ok || file == "" {
		http.NotFound(w, r)
		return
	}
	if file == "boot.ipxe" {
		f.serveMenu(w, r, name, mac, bootmenu.IPXE)
		return
	}
	data, err := f.answer(mac, file)
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
		serveBytes(w, r, name, data)
	}
}

// serveMenu answers with the menu the gate gives mac, or 403 and why.
func (f *fleet) serveMenu(w http.ResponseWriter, r *http.Request, name string, mac net.HardwareAddr, kind bootmenu.Kind) {
	out, d, err := f.menu(mac, kind)
	if err != nil {
		http.Error(w, "pxekit: "+d.Why, http.StatusForbidden)
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

// reportBody is what installers POST: the final report, or (Ubuntu with
// Callback.Events) one progress event carrying event_type.
type reportBody struct {
	Report
	EventType   string `json:"event_type"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Result      string `json:"result"`
}

// maxReport bounds a report body: a few hundred checks at most.
const maxReport = 1 << 20

func (f *fleet) serveReport(w http.ResponseWriter, r *http.Request) {
	mac, ok := parseMAC(r.PathValue("mac"))
	if !ok {
		http.Error(w, "pxekit: not a MAC address: "+r.PathValue("mac"), http.StatusBadRequest)
		return
	}
	var body reportBody
	data, err := io.ReadAll(io.LimitReader(r.Body, maxReport+1))
	if err == nil && len(data) > maxReport {
		err = errors.New("body over 1 MiB")
	}
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		http.Error(w, "pxekit: report: "+err.Error(), http.StatusBadRequest)
		return
	}
	ip := clientIP(r)
	f.tracker.Bind(mac.String(), ip)
	if body.EventType != "" {
		// An installer progress event, not the end.
		detail := strings.TrimSpace(body.EventType + " " + body.Name)
		if body.Result != "" {
			detail += " " + body.Result
		}
		f.tracker.Observe(r.Context(), mac.String(), progress.Installing, detail, slog.String("proto", "report"))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch body.Status {
	case "ok", "failed", "unknown":
	default:
		http.Error(w, fmt.Sprintf("pxekit: report: status %q: want ok, failed or unknown", body.Status), http.StatusBadRequest)
		return
	}
	rep := body.Report
	if ip.IsValid() {
		rep.From = ip.String()
	}
	if !f.gate.Expecting(mac) {
		// Only a host that was given an answer file (or is listed) can
		// report: anything else would let any client on the network
		// write state for made-up MACs.
		http.Error(w, "pxekit: no install of "+mac.String()+" is known", http.StatusNotFound)
		return
	}
	rec, err := f.gate.Reported(mac, rep)
	if err != nil {
		// Not acknowledged: the installer's request fails and nothing
		// claims the host is done.
		f.log.Error("report not saved", "mac", mac.String(), "error", err)
		http.Error(w, "pxekit: report not saved", http.StatusInternalServerError)
		return
	}
	st := progress.Done
	if rec.State == Failed {
		st = progress.Failed
	}
	var failed []string
	for _, c := range rep.Checks {
		if !c.OK {
			failed = append(failed, c.Name)
		}
	}
	attrs := []slog.Attr{slog.String("status", rep.Status), slog.Int("checks", len(rep.Checks))}
	if len(failed) > 0 {
		attrs = append(attrs, slog.String("failed_checks", strings.Join(failed, ", ")))
	}
	f.tracker.Observe(r.Context(), mac.String(), st, "report from "+rep.From, attrs...)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fleet) serveReinstall(w http.ResponseWriter, r *http.Request) {
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
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rec)
}

// observeMenu reports a menu served, with what it leads to.
func (f *fleet) observeMenu(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, name string, d Decision, proto string) {
	attrs := []slog.Attr{slog.String("proto", proto), slog.String("next", string(d.Action))}
	if ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
		if mac != nil {
			f.tracker.Bind(mac.String(), ip)
		}
	}
	f.tracker.Observe(ctx, macString(mac), progress.Menu, name+" ("+string(d.Action)+")", attrs...)
}

// statusWriter remembers the status code a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile(2) for the ISO and file trees.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}
