package dhcpsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingHandler keeps every record logged, so tests can count lines and
// read their attributes.
type countingHandler struct {
	mu    sync.Mutex
	level slog.Level
	recs  []slog.Record
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// problemSummary adds up the problem summary lines logged so far.
type problemSummary struct {
	lines    int
	total    uint64
	counts   map[string]uint64
	examples []string
	lastErrs []string
}

func (h *countingHandler) summary() problemSummary {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := problemSummary{counts: map[string]uint64{}}
	for _, r := range h.recs {
		if r.Message != "dhcp requests not answered normally" {
			continue
		}
		p.lines++
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "total":
				p.total += a.Value.Uint64()
			case "count":
				for _, g := range a.Value.Group() {
					p.counts[g.Key] += g.Value.Uint64()
				}
			case "examples":
				p.examples = append(p.examples, a.Value.String())
			case "last_err":
				p.lastErrs = append(p.lastErrs, a.Value.String())
			}
			return true
		})
	}
	return p
}

func (h *countingHandler) lines() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// countingConn stands in for a server socket and counts the replies.
type countingConn struct {
	mu sync.Mutex
	n  int
}

func (c *countingConn) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return len(b), nil
}

// A flood from one MAC, 50 packets a second for minutes, until 10,000 have
// been refused by the rate limit: they are counted, and logged as a
// handful of summary lines.
func TestFloodIsSummarised(t *testing.T) {
	h := &countingHandler{level: slog.LevelInfo}
	s := newTestServer(t, Config{Mode: ModeProxy, Logger: slog.New(h)})
	clk := newTestClock()
	s.now = clk.now
	start := clk.now()
	conn := &countingConn{}
	pkt := buildDiscover(t, recordedClients[0]).ToBytes()
	sent, refused := 0, 0
	for refused < 10000 {
		s.receive(t.Context(), conn, 67, zeroSrc, pkt, nil)
		sent++
		refused = sent - conn.n
		clk.advance(20 * time.Millisecond)
	}
	s.problems.flush(clk.now())
	elapsed := clk.now().Sub(start)
	require.Greater(t, elapsed, 4*time.Minute, "RatePerMAC 10 refuses 40 of 50 a second")

	sum := h.summary()
	assert.Equal(t, uint64(refused), sum.total)
	assert.Equal(t, map[string]uint64{"rate_limited": uint64(refused)}, sum.counts)
	// One line at the first refusal, one per minute after it, one at the
	// end.
	maxLines := int(elapsed/time.Minute) + 2
	assert.LessOrEqual(t, h.lines(), maxLines)
	assert.GreaterOrEqual(t, sum.lines, maxLines-1)
	for _, ex := range sum.examples {
		assert.Contains(t, ex, "rate_limited 52:54:00:12:34:56")
	}
}

// Refusals of all kinds at debug level still make summary lines, not one
// line each; and a summary at a level the handler drops makes none.
func TestFloodOfMalformedPackets(t *testing.T) {
	for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		h := &countingHandler{level: lvl}
		s := newTestServer(t, Config{Mode: ModeFull, Logger: slog.New(h), RatePerMAC: -1})
		clk := newTestClock()
		s.now = clk.now
		bad := plainDiscover(mustMAC("52:54:00:00:20:01"))
		bad.HWType = 32 // InfiniBand: Classify refuses it
		b := bad.ToBytes()
		for i := range 10000 {
			if i%2 == 0 {
				s.receive(t.Context(), &countingConn{}, 67, zeroSrc, []byte("junk"), nil)
			} else {
				s.receive(t.Context(), &countingConn{}, 67, zeroSrc, b, nil)
			}
			clk.advance(time.Millisecond)
		}
		s.problems.flush(clk.now())
		sum := h.summary()
		if lvl == slog.LevelInfo {
			assert.Zero(t, h.lines())
			continue
		}
		assert.LessOrEqual(t, h.lines(), 2)
		assert.Equal(t, uint64(10000), sum.total)
		assert.Equal(t, map[string]uint64{"malformed": 10000}, sum.counts)
	}
}

func TestProblemLog(t *testing.T) {
	h := &countingHandler{level: slog.LevelInfo}
	p := newProblemLog(slog.New(h), time.Minute)
	t0 := time.Unix(1000, 0)
	mac := mustMAC("52:54:00:00:30:01").String()

	p.add(t0, reasonPoolFull, mac, ErrPoolExhausted)
	assert.Equal(t, 1, h.lines(), "the first problem after a quiet interval is logged at once")

	for i := range 100 {
		p.add(t0.Add(time.Duration(i)*time.Second/10), reasonOther, mac, errors.New(strings.Repeat("x", 10000)))
	}
	p.tick(t0.Add(59 * time.Second))
	assert.Equal(t, 1, h.lines(), "no line before the interval has passed")
	p.tick(t0.Add(61 * time.Second))
	assert.Equal(t, 2, h.lines())
	sum := h.summary()
	assert.Equal(t, uint64(101), sum.total)
	assert.Equal(t, uint64(100), sum.counts["unanswered"])
	assert.LessOrEqual(t, len(sum.lastErrs[1]), maxLogText+20, "error text from outside is cut")
	assert.Equal(t, "pool_exhausted "+mac, sum.examples[0])
	assert.Equal(t, "unanswered "+mac, sum.examples[1], "examples are distinct")

	p.tick(t0.Add(200 * time.Second))
	p.flush(t0.Add(201 * time.Second))
	assert.Equal(t, 2, h.lines(), "nothing counted, nothing written")

	// A debug-level problem the handler drops does not hold back the
	// next warning.
	p.add(t0.Add(300*time.Second), reasonMalformed, mac, nil)
	p.add(t0.Add(301*time.Second), reasonPoolFull, mac, ErrPoolExhausted)
	p.add(t0.Add(302*time.Second), reasonPoolFull, mac, ErrPoolExhausted)
	assert.Equal(t, 3, h.lines())
	p.flush(t0.Add(303 * time.Second))
	sum = h.summary()
	assert.Equal(t, 4, sum.lines)
	assert.Equal(t, uint64(1+100+1+1), sum.total, "the dropped debug count is not carried into warnings")

	// Many sources: a few of them are named.
	for i := range 50 {
		p.add(t0.Add(400*time.Second), reasonRateLimited, fmt.Sprintf("52:54:00:00:31:%02x", i), nil)
	}
	p.flush(t0.Add(401 * time.Second))
	sum = h.summary()
	assert.Equal(t, maxExamples, strings.Count(sum.examples[len(sum.examples)-1], "rate_limited 52:54:00:00:31:"))
}

// MACs appear as aa:bb:cc:dd:ee:ff in every log line, with the text and
// JSON handlers alike.
func TestLogsPrintMACs(t *testing.T) {
	for name, mk := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler {
			return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		"json": func(b *bytes.Buffer) slog.Handler {
			return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	} {
		var buf bytes.Buffer
		s := newTestServer(t, Config{Mode: ModeFull, Logger: slog.New(mk(&buf))})
		mac := mustMAC("52:54:00:12:34:56")
		disc := plainDiscover(mac)
		conn := &countingConn{}
		s.serveOne(t.Context(), conn, 67, zeroSrc, disc, true)                                                    // OFFER: "dhcp sent"
		s.serveOne(t.Context(), conn, 67, zeroSrc, asRequest(disc, testServerIP, netipAddr("10.77.0.190")), true) // NAK
		s.problems.flush(s.now())
		out := buf.String()
		assert.Contains(t, out, "52:54:00:12:34:56", name)
		for _, raw := range []string{string(mac), `RT\x00`, `RT\u0000`, "UlQAEjRW" /* base64 */} {
			assert.NotContains(t, out, raw, name)
		}
		// "dhcp sent" for the OFFER and the NAK, and the NAK in the summary.
		assert.Equal(t, 3, strings.Count(out, "52:54:00:12:34:56"), "%s: %s", name, out)
	}
}

// Packet or caller text reaches logs and errors cut short.
func TestLongTextIsCut(t *testing.T) {
	var buf bytes.Buffer
	long := strings.Repeat("A", 20000)
	s := newTestServer(t, Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)),
		Boot: BootFunc(func(Client) (BootAnswer, error) { return BootAnswer{}, errors.New(long) })})
	s.serveOne(t.Context(), &countingConn{}, 67, zeroSrc, buildDiscover(t, recordedClients[0]), true)
	s.problems.flush(s.now())
	require.NotEmpty(t, buf.String())
	assert.Less(t, buf.Len(), 1000, buf.String())
	assert.Contains(t, buf.String(), "(20")

	s = newTestServer(t, Config{Boot: BootFunc(func(Client) (BootAnswer, error) { return BootAnswer{File: long}, nil })})
	_, err := s.handle(t.Context(), buildDiscover(t, recordedClients[0]), 67, zeroSrc)
	require.ErrorIs(t, err, ErrBootFileTooLong)
	assert.Less(t, len(err.Error()), 400)

	// A host name longer than a DNS name is not stored.
	s = newTestServer(t, Config{Mode: ModeFull})
	req := asRequest(plainDiscover(mustMAC("52:54:00:00:40:01")), netip.Addr{}, netipAddr("10.77.0.140"))
	req.Options[uint8(dhcpv4.OptionHostName)] = bytes.Repeat([]byte("h"), 1000)
	ack, _ := exchange(t, s, req, 67, zeroSrc)
	require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	assert.Empty(t, leaseOf(s, netipAddr("10.77.0.140")).Hostname)
	req.Options[uint8(dhcpv4.OptionHostName)] = []byte("node7")
	exchange(t, s, req, 67, zeroSrc)
	assert.Equal(t, "node7", leaseOf(s, netipAddr("10.77.0.140")).Hostname)

	assert.Equal(t, "abc", capText("abc", 3))
	assert.Equal(t, "ab...(5 bytes)", capText("abcde", 2))
	assert.Equal(t, "...(2 bytes)", capText("é", 1), "never cuts inside a rune")
}
