package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Installers can send their log over syslog while they run: anaconda with
// inst.syslog=HOST:PORT, d-i with log_host= and log_port=. The receiver
// turns that stream into the "installing" stage with the latest line as its
// detail, which is what an operator wants to see between "answer file" and
// "done" (twenty minutes of nothing otherwise). Ubuntu reports through its
// own webhook instead (answerfile's Callback.Events). bootmenu puts the
// receiver on the kernel lines (InstallInput.Syslog).

// installLog keeps the latest installer log line per MAC.
type installLog struct {
	mu   sync.Mutex
	last map[string]logLine
}

type logLine struct {
	At   time.Time
	Text string
}

func (l *installLog) set(mac, text string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]logLine{}
	}
	l.last[mac] = logLine{At: at, Text: text}
}

func (l *installLog) get(mac string) (logLine, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, ok := l.last[mac]
	return ln, ok
}

// syslogMessage extracts the text of one RFC 3164 or RFC 5424 datagram:
// the <PRI> and, for 5424, the header fields go; what a person reads stays.
// Control characters are dropped and the text is cut to a table cell.
func syslogMessage(b []byte) string {
	s := string(b)
	if strings.HasPrefix(s, "<") {
		if i := strings.IndexByte(s, '>'); i > 0 && i <= 4 {
			s = s[i+1:]
		}
	}
	if strings.HasPrefix(s, "1 ") {
		// RFC 5424: VERSION TIMESTAMP HOST APP PROCID MSGID SD MSG; the
		// structured data may hold spaces, so it is cut by its brackets.
		f := strings.SplitN(s, " ", 7)
		if len(f) == 7 {
			msg := f[6]
			if strings.HasPrefix(msg, "[") {
				if i := strings.Index(msg, "] "); i >= 0 {
					msg = msg[i+2:]
				}
			} else {
				msg = strings.TrimPrefix(msg, "- ")
			}
			s = f[3] + ": " + msg
		}
	}
	var out strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			continue
		}
		out.WriteRune(r)
		if out.Len() >= 160 {
			break
		}
	}
	return out.String()
}

// serveSyslog reads installer log datagrams until conn is closed (which
// serve does when its context ends) or fails.
func (f *fleet) serveSyslog(ctx context.Context, conn net.PacketConn) error {
	buf := make([]byte, 8192)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ua.IP)
		f.installerLine(ctx, ip.Unmap(), syslogMessage(buf[:n]))
	}
}

// installerLine records one log line of the installer at ip.
func (f *fleet) installerLine(ctx context.Context, ip netip.Addr, text string) {
	if text == "" {
		return
	}
	hw, ok := f.bindings.MAC(ip)
	if !ok {
		return
	}
	mac := hw.String()
	f.installLog.set(mac, text, time.Now())
	// Lines before the answer file are the installer starting; after it,
	// the first line opens the installing stage and the rest only update
	// its detail (an install logs thousands of lines).
	if rec, ok := f.gate.store.Get(mac); !ok || rec.State != Installing {
		return
	}
	if last, ok := f.steps.last(mac); ok && last.Stage == StageInstalling {
		return
	}
	f.steps.add(ctx, hw, ip, StageInstalling, "syslog: "+text, slog.String("proto", "syslog"), slog.String("ip", ip.String()))
}
