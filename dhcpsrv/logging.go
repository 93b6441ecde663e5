package dhcpsrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// macAttr is the log attribute of a client MAC. A net.HardwareAddr given to
// slog as is prints as its raw bytes (text handler) or base64 (JSON
// handler), because its underlying type is []byte.
func macAttr(mac net.HardwareAddr) slog.Attr { return slog.String("mac", mac.String()) }

// maxLogText caps any text that may carry bytes from a packet (error
// messages of a caller's BootFunc, boot file names) in logs and errors.
const maxLogText = 200

// capText returns s cut to at most n bytes (on a UTF-8 boundary), saying how
// long it was. Quoting is left to the log handler or to %q.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:cut], len(s))
}

// clientHostname is option 12 as stored in a lease: RFC 2132 allows no more
// than a DNS name (255 bytes), while repeated options (RFC 3396) let a
// packet carry over a kilobyte. A longer value is dropped, not cut, so that
// no wrong name is stored.
func clientHostname(h string) string {
	if len(h) > 255 {
		return ""
	}
	return h
}

// reason classifies a request that got no normal answer.
type reason uint8

const (
	reasonMalformed   reason = iota // not a DHCP client request
	reasonRateLimited               // over Config.RatePerMAC
	reasonQueueFull                 // no worker free, Config.Queue full
	reasonNak                       // answered with a NAK
	reasonPoolFull                  // ErrPoolExhausted
	reasonBootFailed                // boot decision failed (full mode: address only)
	reasonSendFailed                // the reply could not be sent
	reasonProbeFailed               // the conflict probe failed; offered unchecked
	reasonStoreDown                 // the lease store did not answer
	reasonOther                     // any other error: no answer
	numReasons
)

var reasonNames = [numReasons]string{"malformed", "rate_limited", "queue_full", "nak", "pool_exhausted", "boot_failed", "send_failed", "probe_failed", "store_unavailable", "unanswered"}

// level is how much a reason matters to an operator: malformed packets and
// NAKs are routine on a shared segment, the rest means a client waits.
func (r reason) level() slog.Level {
	if r == reasonMalformed || r == reasonNak {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

func reasonOf(err error) reason {
	switch {
	case errors.Is(err, ErrMalformed):
		return reasonMalformed
	case errors.Is(err, ErrPoolExhausted):
		return reasonPoolFull
	case errors.Is(err, ErrNoBootFile), errors.Is(err, ErrBootFileTooLong):
		return reasonBootFailed
	case errors.Is(err, ErrStoreUnavailable):
		return reasonStoreDown
	}
	return reasonOther
}

// problemInterval is how often the problem summary is written at most.
const problemInterval = time.Minute

// maxExamples bounds the distinct example sources one summary line names.
const maxExamples = 4

// problemLog counts requests that got no normal answer (dropped, refused,
// NAKed, failed), per reason, and writes them as one summary line per
// interval at most: a flood of spoofed or broken packets costs a counter
// increment each, not a log line each. The first problem after a quiet
// interval is written at once, so a single failure is not delayed.
type problemLog struct {
	log   *slog.Logger
	every time.Duration

	mu       sync.Mutex
	last     time.Time // when the last line was written; zero: never
	since    time.Time // first problem counted since then
	counts   [numReasons]uint64
	total    uint64
	level    slog.Level
	examples []example
	lastErr  error
}

type example struct {
	r   reason
	src string
}

func newProblemLog(l *slog.Logger, every time.Duration) *problemLog {
	return &problemLog{log: l, every: every, examples: make([]example, 0, maxExamples)}
}

// add counts one problem; src names the client (MAC or address) and err,
// which may be nil, says what went wrong.
func (p *problemLog) add(now time.Time, r reason, src string, err error) {
	p.mu.Lock()
	if p.total == 0 {
		p.since, p.level = now, r.level()
	}
	p.counts[r]++
	p.total++
	p.level = max(p.level, r.level())
	if ex := (example{r, src}); len(p.examples) < maxExamples && !slices.Contains(p.examples, ex) {
		p.examples = append(p.examples, ex)
	}
	if err != nil {
		p.lastErr = err // formatted only if written
	}
	rec, ok := p.takeLocked(now, false)
	p.mu.Unlock()
	if ok {
		p.write(rec)
	}
}

// tick writes what was counted once the interval since the last line has
// passed; the serving loop calls it periodically so that the end of a flood
// is reported without waiting for the next problem.
func (p *problemLog) tick(now time.Time) {
	p.mu.Lock()
	rec, ok := p.takeLocked(now, false)
	p.mu.Unlock()
	if ok {
		p.write(rec)
	}
}

// flush writes whatever is counted, interval or not (end of Serve).
func (p *problemLog) flush(now time.Time) {
	p.mu.Lock()
	rec, ok := p.takeLocked(now, true)
	p.mu.Unlock()
	if ok {
		p.write(rec)
	}
}

type problemRecord struct {
	level slog.Level
	attrs []slog.Attr
}

// takeLocked empties the counters into a record when a line is due. The
// line is written outside the lock so that a slow handler delays nobody but
// the caller.
func (p *problemLog) takeLocked(now time.Time, force bool) (problemRecord, bool) {
	if p.total == 0 || (!force && !p.last.IsZero() && now.Sub(p.last) < p.every) {
		return problemRecord{}, false
	}
	rec := problemRecord{level: p.level}
	if !p.log.Enabled(context.Background(), p.level) {
		// Nothing is written, so the next problem that is worth a line
		// is not held back by an interval that printed nothing.
		p.reset()
		return problemRecord{}, false
	}
	counts := make([]any, 0, numReasons)
	for r, n := range p.counts {
		if n > 0 {
			counts = append(counts, slog.Uint64(reasonNames[r], n))
		}
	}
	examples := make([]string, len(p.examples))
	for i, ex := range p.examples {
		examples[i] = reasonNames[ex.r] + " " + capText(ex.src, 64)
	}
	rec.attrs = []slog.Attr{
		slog.Uint64("total", p.total),
		slog.Group("count", counts...),
		slog.Duration("over", now.Sub(p.since)),
		slog.String("examples", strings.Join(examples, ", ")),
	}
	if p.lastErr != nil {
		rec.attrs = append(rec.attrs, slog.String("last_err", capText(p.lastErr.Error(), maxLogText)))
	}
	p.last = now
	p.reset()
	return rec, true
}

func (p *problemLog) reset() {
	p.counts = [numReasons]uint64{}
	p.total = 0
	p.examples = p.examples[:0]
	p.lastErr = nil
}

func (p *problemLog) write(rec problemRecord) {
	p.log.LogAttrs(context.Background(), rec.level, "dhcp requests not answered normally", rec.attrs...)
}
