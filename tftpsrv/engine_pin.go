package tftpsrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pin/tftp/v3"
)

// pinEngine runs netascii transfers on github.com/pin/tftp/v3, the
// protocol engine of record for RFC 1350 line-end conversion. Octet
// transfers used to run here too; they moved to this package's own sender
// (transfer.go), which batches and reads ahead and, unlike pin/tftp's fixed
// timer, resends after a few round-trip times, so a lossy link does not
// cost a whole timeout per lost packet.
//
// Why the split: pin/tftp's data phase is correct for lock-step transfers
// (block roll-over, timer-only retransmission, netascii), but its request
// intake is not safe to expose (names reach handlers unchecked, every error
// is code 1 carrying Go error text, write requests get a socket, option
// names are matched case-sensitively, Shutdown has no deadline), and it has
// no RFC 7440 windowsize or RFC 2349 timeout. So the Server reads requests
// itself, vets and negotiates them, refuses what must be refused with the
// right code, and hands each admitted lock-step request to pin/tftp as a
// rewritten RRQ (lower-case options, values already capped, the name
// replaced by a private key) through an in-process PacketConn.
//
// One consequence: pin/tftp binds its transfer sockets to the wildcard
// address when it is not reading the listening socket itself, so lock-step
// replies leave from the address the kernel picks for the route to the
// client; on a boot network with one address per interface that is the
// address the client talked to.
type pinEngine struct {
	srv     *tftp.Server
	conn    *handoffConn
	pending sync.Map // key → *pinJob
	seq     atomic.Uint64
	once    sync.Once
	served  chan struct{}
}

type pinJob struct {
	reader   *guardedReader
	size     int64
	picked   chan struct{}
	finished chan struct{}
	n        int64
	err      error
}

// handoffWait bounds how long a vetted request may wait for the engine's
// single intake goroutine.
const handoffWait = 5 * time.Second

func startPinEngine(cfg settings) *pinEngine {
	e := &pinEngine{
		conn:   &handoffConn{in: make(chan handoffPacket, 64), closed: make(chan struct{})},
		served: make(chan struct{}),
	}
	e.srv = tftp.NewServer(e.read, nil)
	e.srv.SetTimeout(cfg.timeout)
	// Retries lowered, if need be, so that pin/tftp gives up a silent
	// client within StallTimeout, as the own sender does.
	e.srv.SetRetries(cfg.pinRetries)
	e.srv.SetBackoff(func(int) time.Duration { return 0 })
	// Blksize arrives already capped to config and path MTU.
	e.srv.SetBlockSizeNegotiation(false)
	go func() {
		defer close(e.served)
		_ = e.srv.Serve(e.conn)
	}()
	return e
}

// shutdown stops pin/tftp; it returns once its transfers have ended, which
// our readers force soon after the server context is cancelled.
func (e *pinEngine) shutdown() {
	e.once.Do(func() {
		e.srv.Shutdown()
		<-e.served
	})
}

// read is pin/tftp's read handler. It always calls ReadFrom unless it
// returns an error, the two ways pin/tftp closes the transfer socket.
func (e *pinEngine) read(key string, rf io.ReaderFrom) error {
	v, ok := e.pending.LoadAndDelete(key)
	if !ok {
		return errors.New("transfer expired")
	}
	job := v.(*pinJob)
	close(job.picked)
	if ot, ok := rf.(tftp.OutgoingTransfer); ok && job.size >= 0 {
		ot.SetSize(job.size)
	}
	job.n, job.err = rf.ReadFrom(job.reader)
	close(job.finished)
	return nil
}

// send runs one lock-step transfer on pin/tftp and waits for its end.
func (e *pinEngine) send(ctx context.Context, t *transfer, content io.Reader, size int64, neg negotiation) result {
	job := &pinJob{
		reader:   &guardedReader{r: content, ctx: ctx, touch: t.touch},
		size:     size,
		picked:   make(chan struct{}),
		finished: make(chan struct{}),
	}
	var opts []option
	for _, o := range neg.oack {
		if o.name == "tsize" {
			o.value = "0" // pin/tftp fills it from SetSize
		}
		opts = append(opts, o)
	}
	key := strconv.FormatUint(e.seq.Add(1), 10)
	e.pending.Store(key, job)
	pkt := handoffPacket{b: packRequest(opRRQ, key, t.req.mode, opts), from: net.UDPAddrFromAddrPort(t.peer)}
	timer := time.NewTimer(handoffWait)
	defer timer.Stop()
	select {
	case e.conn.in <- pkt:
		select {
		case <-job.picked:
		case <-ctx.Done():
		case <-timer.C:
		}
	case <-ctx.Done():
	case <-timer.C:
	}
	if _, unclaimed := e.pending.LoadAndDelete(key); unclaimed {
		err := error(ErrServerClosed)
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			return result{err: cause} // the watchdog has answered
		}
		if ctx.Err() == nil {
			err = errors.New("lock-step engine did not take the transfer")
		}
		code, msg := wireError(err)
		sendError(t.local, t.peer, code, msg)
		return result{err: err}
	}
	<-job.finished
	return classifyPin(job)
}

// classifyPin turns pin/tftp's outcome into ours. pin/tftp reports client
// ERROR packets only as text ("sending block N: code=C, error: M"), so the
// text is matched; an ERROR at block 0 is the UEFI size probe.
func classifyPin(job *pinJob) result {
	res := result{bytes: job.reader.n}
	err := job.err
	switch {
	case err == nil:
	case job.reader.cause != nil:
		res.err = job.reader.cause
	case strings.HasPrefix(err.Error(), "sending block 0: code="):
		res.probe = true
	case strings.HasPrefix(err.Error(), "sending block "):
		res.err = fmt.Errorf("%w: %s", ErrClientAborted, err.Error())
	case isTimeout(err):
		res.err = ErrTimeout
	default:
		res.err = err
	}
	return res
}

// guardedReader counts bytes, stops on server shutdown or a stall, and
// replaces read errors with a fixed text, because pin/tftp sends a reader's
// error text to the client. The real error is kept for the log. Each Read
// counts as progress of the transfer: pin/tftp reads the next block once the
// client has acknowledged the previous one (the netascii converter between
// them buffers less than a block).
type guardedReader struct {
	r     io.Reader
	ctx   context.Context
	touch func(acked int64)
	n     int64
	cause error
}

var errReadFailed = errors.New("read error")

func (g *guardedReader) Read(p []byte) (int, error) {
	if g.ctx.Err() != nil {
		if cause := context.Cause(g.ctx); errors.Is(cause, ErrStalled) {
			g.cause = cause
			return 0, errors.New("transfer timed out")
		}
		g.cause = ErrServerClosed
		return 0, errors.New("server shutting down")
	}
	if g.touch != nil {
		g.touch(g.n)
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if err != nil && err != io.EOF {
		g.cause = err
		return n, errReadFailed
	}
	return n, err
}

// handoffConn is the PacketConn pin/tftp reads requests from: it yields the
// requests the Server has already vetted. pin/tftp never writes to it.
type handoffConn struct {
	in        chan handoffPacket
	closed    chan struct{}
	closeOnce sync.Once
}

type handoffPacket struct {
	b    []byte
	from *net.UDPAddr
}

var errHandoffClosed = errors.New("handoff closed")

func (c *handoffConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pkt := <-c.in:
		return copy(p, pkt.b), pkt.from, nil
	case <-c.closed:
		return 0, nil, errHandoffClosed
	}
}

func (c *handoffConn) WriteTo([]byte, net.Addr) (int, error) { return 0, errHandoffClosed }
func (c *handoffConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}
func (c *handoffConn) LocalAddr() net.Addr              { return &net.UDPAddr{IP: net.IPv4zero} }
func (c *handoffConn) SetDeadline(time.Time) error      { return nil }
func (c *handoffConn) SetReadDeadline(time.Time) error  { return nil }
func (c *handoffConn) SetWriteDeadline(time.Time) error { return nil }
