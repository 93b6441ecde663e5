package tftpsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// transfer is one admitted read request, from handler to last ACK.
type transfer struct {
	srv    *Server
	cfg    settings
	req    request
	r      *Request
	peer   netip.AddrPort
	local  netip.Addr
	limits optionLimits
	start  time.Time

	// ctx is the Request's context. It is cancelled when the transfer
	// ends, or with cause ErrStalled by the stall watchdog.
	ctx    context.Context
	cancel context.CancelCauseFunc

	progress atomic.Int64                // time of the last progress, Unix ns
	acked    atomic.Int64                // payload bytes acknowledged so far
	ended    atomic.Bool                 // the end is reported and the slot freed
	conn     atomic.Pointer[net.UDPConn] // the own sender's socket, once made
	viaPin   atomic.Bool                 // pin/tftp owns the transfer's socket

	mu      sync.Mutex  // orders the start event before a watchdog's end event
	timer   *time.Timer // the stall watchdog
	started bool
	size    int64
	neg     negotiation
}

// stallGrace is how much later than StallTimeout the watchdog looks. A
// sender waiting on a silent client gives up by itself at StallTimeout
// (with ErrTimeout, the more telling error); the watchdog is for what the
// sender cannot notice, a handler or a Read that does not return.
const stallGrace = 250 * time.Millisecond

// watch starts the stall watchdog; the request counts as progress.
func (t *transfer) watch() {
	t.touch(0)
	t.mu.Lock()
	t.size = -1
	t.timer = time.AfterFunc(t.cfg.stall+stallGrace, t.checkStall)
	t.mu.Unlock()
}

// touch records progress: the request, or an acknowledgement of new data
// (bringing the acknowledged total to acked).
func (t *transfer) touch(acked int64) {
	t.progress.Store(time.Now().UnixNano())
	t.acked.Store(acked)
}

// checkStall is the watchdog. When the transfer has made no progress for
// StallTimeout it takes the transfer's end for itself: it cancels the
// context, tells the client when it can do so from the socket the client
// knows, frees the slot and reports the end. The transfer's goroutine,
// whenever it gets back, finds the end taken and only cleans up.
func (t *transfer) checkStall() {
	idle := time.Since(time.Unix(0, t.progress.Load()))
	t.mu.Lock()
	if t.ended.Load() {
		t.mu.Unlock()
		return
	}
	if left := t.cfg.stall + stallGrace - idle; left > 0 {
		t.timer.Reset(left)
		t.mu.Unlock()
		return
	}
	t.ended.Store(true) // under mu, so run cannot start sending now
	started, size, neg := t.started, t.size, t.neg
	t.mu.Unlock()

	s := t.srv
	err := fmt.Errorf("%w: no progress for %v", ErrStalled, idle.Round(time.Millisecond))
	t.cancel(err)
	// Report, then free the slot, so that whoever gets the slot next
	// has seen this end reported (as run's end does).
	defer s.transfers.Done()
	defer s.release(t.peer)
	if !started {
		// Still in the handler: nothing was sent, so the client
		// expects an answer from a new socket, which refuse sends.
		s.refuse(t.peer, t.local, t.r.Name, err, err)
		return
	}
	if c := t.conn.Load(); c != nil {
		code, msg := wireError(err)
		_, _ = c.Write(packError(code, msg))
	}
	// pin/tftp's socket is out of reach; pin/tftp sends its own ERROR
	// when the read that holds it returns.
	t.finish(size, neg, result{bytes: t.acked.Load(), err: err})
}

// end frees the slot and reports the end through report, unless the
// watchdog already did.
func (t *transfer) end(report func()) {
	if !t.ended.CompareAndSwap(false, true) {
		return
	}
	t.mu.Lock()
	t.timer.Stop()
	t.mu.Unlock()
	defer t.srv.transfers.Done()
	defer t.srv.release(t.peer)
	report()
}

// result is how a transfer ended.
type result struct {
	bytes int64
	probe bool
	err   error
}

func (t *transfer) run() {
	s := t.srv
	defer t.cancel(nil)

	w := &response{size: -1}
	t.serveHandler(w)
	if w.err == nil && w.content == nil && !w.wrote {
		w.err = fs.ErrNotExist
	}
	if w.err != nil {
		if w.content != nil {
			closeContent(w.content)
		}
		t.end(func() { s.refuse(t.peer, t.local, t.r.Name, w.err, w.err) })
		return
	}
	var content io.Reader
	size := w.size
	if w.content != nil {
		defer closeContent(w.content)
		content, size = prepareContent(w.content, size)
	} else {
		content, size = bytes.NewReader(w.buf.Bytes()), int64(w.buf.Len())
	}

	opts := t.req.opts
	if t.req.mode == "netascii" {
		// Only pin/tftp converts line ends; it knows blksize
		// and tsize only, so drop the rest before negotiating.
		opts = lockStepOptions(opts)
	}
	neg := negotiate(opts, t.limits, size)
	t.mu.Lock()
	if t.ended.Load() {
		t.mu.Unlock()
		return // the handler outlasted StallTimeout
	}
	t.started, t.size, t.neg = true, size, neg
	t.touch(0) // the handler has answered
	s.emit(Event{Kind: TransferStart, RemoteAddr: t.peer, Name: t.r.Name, Size: size,
		BlockSize: neg.blksize, WindowSize: neg.windowsize})
	t.mu.Unlock()

	var res result
	if t.req.mode == "netascii" && !neg.windowed {
		t.viaPin.Store(true)
		res = s.engine.send(t.ctx, t, content, size, neg)
	} else {
		res = t.sendWindowed(content, neg)
	}
	t.end(func() { t.finish(size, neg, res) })
}

// serveHandler calls the handler, turning a panic into an error as net/http
// does, so one bad handler cannot stop the server.
func (t *transfer) serveHandler(w *response) {
	defer func() {
		if p := recover(); p != nil {
			if t.srv.Logger != nil {
				t.srv.Logger.Error("tftp handler panicked", "client", t.peer.String(), "file", t.r.Name,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
			w.err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	t.srv.Handler.ServeTFTP(w, t.r)
}

func (t *transfer) finish(size int64, neg negotiation, res result) {
	s := t.srv
	d := time.Since(t.start)
	if s.Logger != nil {
		attrs := []any{"client", t.peer.String(), "file", t.r.Name, "bytes", res.bytes,
			"duration", d.Round(time.Millisecond), "blksize", neg.blksize, "windowsize", neg.windowsize}
		switch {
		case res.probe:
			s.Logger.Debug("tftp size probe answered", attrs...)
		case res.err == nil:
			s.Logger.Info("tftp transfer done", attrs...)
		default:
			s.Logger.Warn("tftp transfer failed", append(attrs, "err", res.err.Error())...)
		}
	}
	s.emit(Event{Kind: TransferEnd, RemoteAddr: t.peer, Name: t.r.Name, Size: size, Bytes: res.bytes,
		Duration: d, BlockSize: neg.blksize, WindowSize: neg.windowsize, Probe: res.probe, Err: res.err})
}

// lockStepOptions keeps the options the pin/tftp engine implements.
func lockStepOptions(opts []option) []option {
	var out []option
	for _, o := range opts {
		if o.name == "tsize" || o.name == "blksize" {
			out = append(out, o)
		}
	}
	return out
}

// prepareContent gives each transfer a private read position: an
// io.ReaderAt of known size is read through its own io.SectionReader, so
// many transfers may share one open file (an ISO image) without sharing an
// offset. An unknown size is taken from io.Seeker when offered.
func prepareContent(c io.Reader, size int64) (io.Reader, int64) {
	if size < 0 {
		if sk, ok := c.(io.Seeker); ok {
			if cur, err := sk.Seek(0, io.SeekCurrent); err == nil {
				if end, err := sk.Seek(0, io.SeekEnd); err == nil {
					if _, err := sk.Seek(cur, io.SeekStart); err == nil {
						size = end - cur
					}
				}
			}
		}
	}
	if ra, ok := c.(io.ReaderAt); ok && size >= 0 {
		off := int64(0)
		if sk, ok := c.(io.Seeker); ok {
			if cur, err := sk.Seek(0, io.SeekCurrent); err == nil {
				off = cur
			}
		}
		return io.NewSectionReader(ra, off, size), size
	}
	return c, size
}

// sendWindowed is this package's own sender, used for every octet transfer
// (and for netascii ones only when they ask for what pin/tftp lacks). It
// follows RFC 7440: send a window of blocks, wait for the ACK of the last
// one; an ACK of an earlier block (the client saw a gap) moves the window
// there and sends again from the next block; silence for the retransmission
// timeout, or the client acknowledging again the block before the window
// (it timed out), resends the window. With windowsize 1 this is plain
// lock-step, where duplicate ACKs are ignored (RFC 1123 4.2.3.1).
//
// It owns its data phase, instead of leaving lock-step transfers to
// pin/tftp, for speed (no per-packet allocation, one socket deadline moved
// per round, read-ahead, the next window read while the client takes the
// current one, one sendmmsg per window) and for loss recovery: the
// retransmission timeout follows the measured round-trip time (see
// rtoEstimator), so on a LAN a lost packet costs a fraction of Timeout.
// The transfer is still given up only after Timeout × (Retries+1) without
// progress, or StallTimeout if that is shorter.
func (t *transfer) sendWindowed(content io.Reader, neg negotiation) result {
	ctx := t.ctx
	conn, err := dialPeer(t.local, t.peer)
	if err != nil {
		sendError(t.local, t.peer, ErrCodeNotDefined, "server out of sockets")
		return result{err: fmt.Errorf("transfer socket: %w", err)}
	}
	t.conn.Store(conn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	timeout := t.cfg.timeout
	if neg.timeout > 0 {
		// RFC 2349: the client chose how long we wait before sending
		// again. It is taken as the longest wait, not the only one:
		// curl asks for 6 s by default, and waiting that long for
		// every lost packet would make a 1 % lossy link unusable.
		// Sending sooner only costs the client a duplicate, which
		// every TFTP client must accept. Negotiation declined values
		// above MaxClientTimeout.
		timeout = neg.timeout
	}
	snd := &windowSender{
		conn: conn, ctx: ctx, giveUp: min(timeout*time.Duration(t.cfg.retries+1), t.cfg.stall),
		rto:   newRTOEstimator(timeout),
		bufs:  &t.srv.bufs,
		touch: t.touch,
	}
	if neg.windowsize > 1 {
		snd.batch = batchWriter(conn, t.peer.Addr().Is4())
	}
	if len(neg.oack) > 0 {
		res, ok := snd.oack(packOACK(neg.oack))
		if !ok {
			return res
		}
	}
	if ra := readAheadSize(neg.blksize, neg.windowsize); neg.blksize < ra {
		// One read system call per few blocks instead of one per block;
		// with 200 transfers on a busy host, system calls are the cost.
		br := t.srv.readers.get(ra)
		br.Reset(content)
		defer func() {
			br.Reset(nil)
			t.srv.readers.put(br)
		}()
		content = br
	}
	return snd.data(content, neg.blksize, neg.windowsize)
}

// Bounds of how much of the content a transfer reads at once.
const (
	minReadAhead = 8 << 10
	maxReadAhead = 32 << 10
)

// readAheadSize is how much a transfer reads at once: about two windows,
// as a power of two from minReadAhead to maxReadAhead. It is held for the
// whole transfer, so it is sized to the transfer rather than to the largest
// case: 8 KiB for lock-step at blksize 1024 to 1468 (a read every 5 to 8
// blocks, where every block already costs a send and a receive), 32 KiB for
// windows of 16 KiB and more. The rack load, 200 lock-step transfers at
// once, held 32 KiB each before.
func readAheadSize(blksize, window int) int {
	n := minReadAhead
	for n < 2*blksize*window && n < maxReadAhead {
		n *= 2
	}
	return n
}

// batchWriter returns the sendmmsg writer of conn: a whole window in one
// system call.
func batchWriter(conn *net.UDPConn, v4 bool) func([]ipv4.Message, int) (int, error) {
	if v4 {
		return ipv4.NewPacketConn(conn).WriteBatch
	}
	return ipv6.NewPacketConn(conn).WriteBatch
}

type windowSender struct {
	conn   *net.UDPConn
	batch  func([]ipv4.Message, int) (int, error) // nil: one write per packet
	ctx    context.Context
	giveUp time.Duration // time without progress after which the client is given up
	touch  func(acked int64)
	rto    rtoEstimator
	bufs   *bufPool
	rbuf   [maxReplyLen]byte
	msgs   []ipv4.Message
	armed  time.Time // read deadline currently set
}

// maxReplyLen is the most of a client packet the sender reads: an ACK is 4
// bytes, an ERROR's message is only logged.
const maxReplyLen = 516

// fail ends a transfer, telling the client why unless it ended it itself.
func (w *windowSender) fail(err error, bytes int64) result {
	if w.ctx.Err() != nil {
		if cause := context.Cause(w.ctx); errors.Is(cause, ErrStalled) {
			// The watchdog has told the client and reported.
			return result{bytes: bytes, err: cause}
		}
		err = ErrServerClosed
	}
	if !errors.Is(err, ErrClientAborted) && !errors.Is(err, ErrTimeout) {
		code, msg := wireError(err)
		_, _ = w.conn.Write(packError(code, msg))
	}
	return result{bytes: bytes, err: err}
}

// await reads the next ACK or ERROR until the deadline. The socket's
// deadline is set only when it changes, which in a lock-step transfer is
// once per block.
func (w *windowSender) await(deadline time.Time) (reply, error) {
	if w.ctx.Err() != nil {
		return reply{}, ErrServerClosed
	}
	if !deadline.Equal(w.armed) {
		if err := w.conn.SetReadDeadline(deadline); err != nil {
			return reply{}, err
		}
		w.armed = deadline
	}
	for {
		n, err := w.conn.Read(w.rbuf[:])
		if err != nil {
			if w.ctx.Err() != nil {
				return reply{}, ErrServerClosed
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				return reply{}, fmt.Errorf("%w: client port closed", ErrClientAborted)
			}
			return reply{}, err
		}
		if r, ok := parseReply(w.rbuf[:n]); ok {
			return r, nil
		}
	}
}

func isTimeout(err error) bool {
	if err == nil {
		// Spares the common case (an ACK arrived) the allocation of ne,
		// which errors.As makes escape: one per acknowledged window.
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// oack sends the OACK and waits for ACK 0. An ERROR instead of ACK 0 is the
// UEFI size probe (or a client declining the options) and ends the transfer
// quietly.
func (w *windowSender) oack(pkt []byte) (result, bool) {
	start := time.Now()
	resent := false
	for {
		sent := time.Now()
		if _, err := w.conn.Write(pkt); err != nil {
			return w.fail(err, 0), false
		}
		deadline := earliest(sent.Add(w.rto.timeout()), start.Add(w.giveUp))
		for {
			r, err := w.await(deadline)
			if isTimeout(err) {
				break
			}
			if err != nil {
				return w.fail(err, 0), false
			}
			if r.op == opERROR {
				return result{probe: true}, false
			}
			if r.block == 0 {
				if !resent {
					w.rto.sample(time.Since(sent))
				}
				w.touch(0)
				return result{}, true
			}
		}
		if time.Since(start) >= w.giveUp {
			return w.fail(ErrTimeout, 0), false
		}
		w.rto.backoff()
		resent = true
	}
}

// send writes packets, a window at a time with sendmmsg when batching.
func (w *windowSender) send(pkts [][]byte) error {
	if w.batch == nil || len(pkts) == 1 {
		for _, p := range pkts {
			if _, err := w.conn.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	// The messages and their one-element Buffers are kept from window
	// to window: allocated per window, they were most of what a
	// windowed transfer allocated.
	for len(w.msgs) < len(pkts) {
		w.msgs = append(w.msgs, ipv4.Message{Buffers: make([][]byte, 1)})
	}
	for i, p := range pkts {
		w.msgs[i].Buffers[0], w.msgs[i].N = p, 0
	}
	for ms := w.msgs[:len(pkts)]; len(ms) > 0; {
		n, err := w.batch(ms, 0)
		if err != nil {
			return err
		}
		ms = ms[n:]
	}
	return nil
}

// readAheadBlocks is how many blocks past the window the sender reads
// while it waits for the window's acknowledgement: the whole next window
// when that fits in maxReadAhead bytes, else as many blocks as do (at
// least one), so the extra memory per transfer stays near maxReadAhead.
func readAheadBlocks(blksize, window int) int {
	return max(1, min(window, maxReadAhead/blksize))
}

func (w *windowSender) data(content io.Reader, blksize, window int) result {
	slot := 4 + blksize
	// The ring holds the window in flight and the blocks read ahead for the
	// next one: when the ACK comes, they go out at once instead of after
	// the reads (a copy per block, a read system call per read-ahead buffer),
	// which used to sit between every ACK and the next DATA while the
	// client waited.
	nslots := window + readAheadBlocks(blksize, window)
	bp := w.bufs.get(nslots * slot)
	defer w.bufs.put(bp)
	ring := *bp
	pkts := make([][]byte, nslots) // pkts[i]: the filled part of slot i
	round := make([][]byte, 0, window)
	var (
		base     uint64 = 1 // oldest unacknowledged block
		filled   int        // blocks base … base+filled-1 are read
		sendFrom int        // first of them not yet sent in this round
		eof      bool
		last     uint64 // the final (short) block, once eof
		acked    int64  // payload bytes acknowledged
		progress = time.Now()
		sent     time.Time
		// resent: blocks of the current window went out more than
		// once, so its ACK is no round-trip sample (Karn).
		resent bool
		// dupHonored: a repeated ACK already caused a resend since
		// the window last moved.
		dupHonored bool
	)
	// delivered: every byte of a non-empty file is acknowledged and only
	// the empty block that ends it (its size is a multiple of blksize) is
	// not. A client that knows the size from tsize may stop there: GRUB
	// does, closing its socket as soon as it has the file it boots last.
	// It has the whole file, so giving it up is no failure.
	delivered := func() bool {
		return eof && base == last && acked > 0 && len(pkts[last%uint64(nslots)]) == 4
	}
	// fill reads blocks until limit of them are held or the content ends.
	fill := func(limit int) error {
		for filled < limit && !eof {
			seq := base + uint64(filled)
			i := int(seq % uint64(nslots))
			p := ring[i*slot : (i+1)*slot]
			n, err := io.ReadFull(content, p[4:])
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				eof, last = true, seq
			case err != nil:
				return err
			}
			if w.ctx.Err() != nil {
				// The read outlasted StallTimeout, or the server is
				// closing: send nothing more.
				return ErrServerClosed
			}
			p[0], p[1], p[2], p[3] = 0, byte(opDATA), byte(seq>>8), byte(seq)
			pkts[i] = p[:4+n]
			filled++
		}
		return nil
	}
	for {
		if err := fill(window); err != nil {
			return w.fail(err, acked)
		}
		inFlight := min(filled, window) // the blocks of this window
		round = round[:0]
		for i := sendFrom; i < inFlight; i++ {
			round = append(round, pkts[(base+uint64(i))%uint64(nslots)])
		}
		if len(round) > 0 {
			if err := w.send(round); err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					return w.fail(fmt.Errorf("%w: client port closed", ErrClientAborted), acked)
				}
				return w.fail(err, acked)
			}
			sent = time.Now()
		}
		sendFrom = inFlight
		// Read the next window while the client takes this one.
		if err := fill(window + readAheadBlocks(blksize, window)); err != nil {
			return w.fail(err, acked)
		}
		// The retransmission clock runs while the sender waits, not
		// while it reads: after a read ahead that took longer than the
		// timeout (a slow Reader), the ACK that arrived meanwhile is
		// still taken rather than answered with a needless resend. (Such
		// an ACK's round-trip sample includes the read: the timeout
		// errs long, towards fewer duplicates.)
		rtoAt := sent.Add(w.rto.timeout())
		if now := time.Now(); now.After(rtoAt) {
			rtoAt = now.Add(w.rto.timeout())
		}
		deadline := earliest(rtoAt, progress.Add(w.giveUp))
		for {
			r, err := w.await(deadline)
			if isTimeout(err) {
				if time.Since(progress) >= w.giveUp {
					if delivered() {
						return result{bytes: acked}
					}
					return w.fail(ErrTimeout, acked)
				}
				w.rto.backoff()
				sendFrom, resent = 0, true
				break
			}
			if err != nil {
				return w.fail(err, acked)
			}
			if r.op == opERROR {
				return w.fail(fmt.Errorf("%w: code %d %q", ErrClientAborted, r.code, r.msg), acked)
			}
			d := int(r.block - uint16(base-1)) // blocks newly acknowledged
			if d > inFlight {
				continue // stale ACK, or one for a block not sent yet
			}
			if d == 0 {
				// A repeated ACK of the block before the window.
				// In lock-step it is the late duplicate that causes
				// the Sorcerer's Apprentice storm: ignore it. With a
				// window it means the client timed out after losing
				// the window's head: resend now rather than after
				// our own timeout, once per round, so duplicates
				// cannot multiply traffic.
				if window == 1 || dupHonored {
					continue
				}
				dupHonored = true
				if time.Since(progress) >= w.giveUp {
					if delivered() {
						return result{bytes: acked}
					}
					return w.fail(ErrTimeout, acked)
				}
				sendFrom, resent = 0, true
				break
			}
			if !resent && d == inFlight {
				w.rto.sample(time.Since(sent))
			}
			for i := 0; i < d; i++ {
				acked += int64(len(pkts[(base+uint64(i))%uint64(nslots)]) - 4)
			}
			if eof && base+uint64(d)-1 == last {
				return result{bytes: acked}
			}
			base += uint64(d)
			filled -= d
			progress = time.Now()
			w.touch(acked)
			sendFrom, resent, dupHonored = 0, false, false
			break
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
