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
	"syscall"
	"time"
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
}

// result is how a transfer ended.
type result struct {
	bytes int64
	probe bool
	err   error
}

func (t *transfer) run() {
	s := t.srv
	defer s.transfers.Done()
	defer s.release(t.peer)

	w := &response{size: -1}
	t.serveHandler(w)
	if w.err == nil && w.content == nil && !w.wrote {
		w.err = fs.ErrNotExist
	}
	if w.err != nil {
		if w.content != nil {
			closeContent(w.content)
		}
		s.refuse(t.peer, t.local, t.r.Name, w.err, w.err)
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
		// Only the lock-step engine converts line ends; it knows blksize
		// and tsize only, so drop the rest before negotiating.
		opts = lockStepOptions(opts)
	}
	neg := negotiate(opts, t.limits, size)
	s.emit(Event{Kind: TransferStart, RemoteAddr: t.peer, Name: t.r.Name, Size: size,
		BlockSize: neg.blksize, WindowSize: neg.windowsize})

	var res result
	if neg.windowed {
		res = t.sendWindowed(content, neg)
	} else {
		res = s.engine.send(s.ctx, t, content, size, neg)
	}
	t.finish(size, neg, res)
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

// lockStepOptions keeps the options the lock-step engine implements.
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

// sendWindowed is this package's own sender, used when the client asked for
// what pin/tftp does not implement: RFC 7440 windowsize, the RFC 2349
// timeout, or a blksize below 512. It follows RFC 7440: send a window of
// blocks, wait for the ACK of the last one; an ACK of an earlier block (the
// client saw a gap) moves the window there and sends again from the next
// block; silence for the timeout, or the client acknowledging again the
// block before the window (it timed out), resends the window. Every resend
// without progress counts against Retries. With windowsize 1 this is plain
// lock-step, where duplicate ACKs are ignored (RFC 1123 4.2.3.1).
func (t *transfer) sendWindowed(content io.Reader, neg negotiation) result {
	ctx := t.srv.ctx
	conn, err := dialPeer(t.local, t.peer)
	if err != nil {
		sendError(t.local, t.peer, ErrCodeNotDefined, "server out of sockets")
		return result{err: fmt.Errorf("transfer socket: %w", err)}
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	timeout := t.cfg.timeout
	if neg.timeout > 0 {
		timeout = neg.timeout
	}
	snd := &windowSender{conn: conn, ctx: ctx, timeout: timeout, retries: t.cfg.retries, rbuf: make([]byte, 1024)}

	if len(neg.oack) > 0 {
		res, ok := snd.oack(packOACK(neg.oack))
		if !ok {
			return res
		}
	}
	return snd.data(content, neg.blksize, neg.windowsize)
}

type windowSender struct {
	conn    *net.UDPConn
	ctx     context.Context
	timeout time.Duration
	retries int
	rbuf    []byte
}

// fail ends a transfer, telling the client why unless it ended it itself.
func (w *windowSender) fail(err error, bytes int64) result {
	if w.ctx.Err() != nil {
		err = ErrServerClosed
	}
	if !errors.Is(err, ErrClientAborted) && !errors.Is(err, ErrTimeout) {
		code, msg := wireError(err)
		_, _ = w.conn.Write(packError(code, msg))
	}
	return result{bytes: bytes, err: err}
}

// await reads the next ACK or ERROR until the deadline.
func (w *windowSender) await(deadline time.Time) (reply, error) {
	if w.ctx.Err() != nil {
		return reply{}, ErrServerClosed
	}
	if err := w.conn.SetReadDeadline(deadline); err != nil {
		return reply{}, err
	}
	for {
		n, err := w.conn.Read(w.rbuf)
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
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// oack sends the OACK and waits for ACK 0. An ERROR instead of ACK 0 is the
// UEFI size probe (or a client declining the options) and ends the transfer
// quietly.
func (w *windowSender) oack(pkt []byte) (result, bool) {
	for attempt := 0; attempt <= w.retries; attempt++ {
		if _, err := w.conn.Write(pkt); err != nil {
			return w.fail(err, 0), false
		}
		deadline := time.Now().Add(w.timeout)
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
				return result{}, true
			}
		}
	}
	return w.fail(ErrTimeout, 0), false
}

func (w *windowSender) data(content io.Reader, blksize, window int) result {
	pkts := make([][]byte, window)
	lens := make([]int, window)
	for i := range pkts {
		pkts[i] = make([]byte, 4+blksize)
	}
	var (
		base     uint64 = 1 // oldest unacknowledged block
		filled   int        // blocks base … base+filled-1 are read
		sendFrom int        // first of them not yet sent in this round
		eof      bool
		last     uint64 // the final (short) block, once eof
		acked    int64  // payload bytes acknowledged
		attempts int
		// dupHonored: a repeated ACK already caused a resend since
		// the window last moved.
		dupHonored bool
	)
	for {
		for filled < window && !eof {
			seq := base + uint64(filled)
			p := pkts[seq%uint64(window)]
			n, err := io.ReadFull(content, p[4:])
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				eof, last = true, seq
			case err != nil:
				return w.fail(err, acked)
			}
			p[0], p[1], p[2], p[3] = 0, byte(opDATA), byte(seq>>8), byte(seq)
			lens[seq%uint64(window)] = 4 + n
			filled++
		}
		for i := sendFrom; i < filled; i++ {
			idx := (base + uint64(i)) % uint64(window)
			if _, err := w.conn.Write(pkts[idx][:lens[idx]]); err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					return w.fail(fmt.Errorf("%w: client port closed", ErrClientAborted), acked)
				}
				return w.fail(err, acked)
			}
		}
		sendFrom = filled
		deadline := time.Now().Add(w.timeout)
		for {
			r, err := w.await(deadline)
			if isTimeout(err) {
				if attempts++; attempts > w.retries {
					return w.fail(ErrTimeout, acked)
				}
				sendFrom = 0
				break
			}
			if err != nil {
				return w.fail(err, acked)
			}
			if r.op == opERROR {
				return w.fail(fmt.Errorf("%w: code %d %q", ErrClientAborted, r.code, r.msg), acked)
			}
			d := int(r.block - uint16(base-1)) // blocks newly acknowledged
			if d > filled {
				continue // stale ACK
			}
			if d == 0 {
				// A repeated ACK of the block before the window.
				// In lock-step it is the late duplicate that causes
				// the Sorcerer's Apprentice storm: ignore it. With a
				// window it means the client timed out after losing
				// the window's head: resend now rather than after
				// our own timeout, once per round and counted as a
				// retry, so duplicates cannot multiply traffic.
				if window == 1 || dupHonored {
					continue
				}
				dupHonored = true
				if attempts++; attempts > w.retries {
					return w.fail(ErrTimeout, acked)
				}
				sendFrom = 0
				break
			}
			for i := 0; i < d; i++ {
				acked += int64(lens[(base+uint64(i))%uint64(window)] - 4)
			}
			if eof && base+uint64(d)-1 == last {
				return result{bytes: acked}
			}
			base += uint64(d)
			filled -= d
			sendFrom, attempts, dupHonored = 0, 0, false
			break
		}
	}
}
