package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/internal/progress"
)

// maxReport bounds a report body: answerfile.MaxReportChecks checks of
// bounded names fit well within it.
const maxReport = 256 << 10

// reporter receives the completion reports the answer file's callback
// sends (see answerfile's package documentation) and logs each as one
// line, stage=done or stage=failed with the client's MAC; the installed
// system's first-boot report is logged the same way with report=booted,
// Ubuntu's progress events as stage=installing.
type reporter struct {
	tracker *progress.Tracker
}

func (rp *reporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap()
	}
	// The answer file is the same for every client, so its report names
	// no MAC: the address tells (DHCP or the neighbour table). A MAC in the
	// path is taken only when already known from the boot, so that nobody
	// can fill the tracker with made-up hosts.
	mac := rp.tracker.MAC(ip)
	if s := r.PathValue("mac"); s != "" {
		hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
		if err != nil || len(hw) != 6 {
			http.Error(w, "pxekit: not a MAC address", http.StatusBadRequest)
			return
		}
		if _, known := rp.tracker.Last(hw.String()); known {
			mac = hw.String()
		}
	}
	rep, err := answerfile.ParseReport(r.Body, maxReport)
	if err != nil {
		// ParseReport's errors quote nothing but short, cleaned excerpts.
		http.Error(w, "pxekit: "+err.Error(), http.StatusBadRequest)
		return
	}
	attrs := []slog.Attr{slog.String("proto", "report")}
	if ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
	}
	if rep.Event != nil {
		rp.tracker.Observe(r.Context(), mac, progress.Installing, strings.TrimSpace(rep.Event.Type+" "+rep.Event.Name+" "+rep.Event.Result), attrs...)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	stage := progress.Done
	if rep.Status != answerfile.StatusOK {
		stage = progress.Failed // a failed check, or no report at all
	}
	attrs = append(attrs, slog.String("report", rep.Stage), slog.String("status", rep.Status),
		slog.String("hostname", rep.Hostname), slog.String("os", rep.OS),
		slog.Int("checks", len(rep.Checks)), slog.Int("failed_checks", len(rep.Failed())))
	rp.tracker.Observe(r.Context(), mac, stage, strings.Join(rep.Failed(), ", "), attrs...)
	w.WriteHeader(http.StatusNoContent)
}
