package tftpsrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Defaults of the Server fields.
const (
	DefaultTimeout               = time.Second
	DefaultRetries               = 4
	DefaultMaxBlockSize          = 1468
	DefaultMaxWindowSize         = 32
	DefaultMaxTransfers          = 1024
	DefaultMaxTransfersPerClient = 8
	DefaultMaxClientTimeout      = 6 * time.Second
	DefaultStallTimeout          = 15 * time.Second
)

// Server is a read-only TFTP server. The zero value is not usable: set
// Handler. Fields must not change after the first call to Serve.
type Server struct {
	// Handler answers every read request. Required; usually a ServeMux or
	// FileServer.
	Handler Handler

	// Logger receives one line per finished or refused transfer; nil
	// means silent.
	Logger *slog.Logger

	// Timeout is the longest wait for an acknowledgement before sending
	// again. Default DefaultTimeout (1 s); PXE ROMs expect short waits. A
	// client may ask for another value with the RFC 2349 timeout option,
	// up to MaxClientTimeout. Once a transfer has measured the round trip, it sends again sooner
	// (after a few round-trip times, at least 100 ms), so a lost packet on
	// a LAN costs a pause of that order rather than a whole Timeout.
	Timeout time.Duration
	// Retries sets when a silent client is given up: after Timeout ×
	// (Retries+1) without progress, or StallTimeout if that is shorter.
	// Default DefaultRetries (4).
	Retries int

	// MaxClientTimeout is the longest RFC 2349 timeout a client may ask
	// for. A request for more has the option declined (left out of the
	// OACK, as RFC 2349 does not let a server lower it) and gets Timeout
	// instead; under one second declines every timeout option. Default
	// DefaultMaxClientTimeout (6 s, what curl 7.88 asks for by default).
	// Without a cap, requests asking for 255 s and never acknowledged held
	// every transfer slot for minutes.
	MaxClientTimeout time.Duration
	// StallTimeout bounds how long a transfer keeps its slot (see
	// MaxTransfers) without progress, whatever the client asked for and
	// whatever Timeout and Retries say. Progress is the admission of the
	// request, the handler's answer, and then every acknowledgement of new
	// data; for netascii transfers, run by pin/tftp, it is every read of
	// the content, which pin/tftp does after each acknowledged block. The
	// handler must answer (not send) within this bound too.
	//
	// Past the bound (checked a quarter second late, so that a sender
	// giving up a silent client at the bound ends the transfer itself,
	// with ErrTimeout) the slot is freed, the transfer's Request.Context
	// is cancelled with cause ErrStalled, the client gets an ERROR (for a
	// netascii transfer stuck in a Read, only once the Read returns, as
	// pin/tftp owns its socket) and the end is reported with ErrStalled,
	// even when the transfer's goroutine is stuck: in a handler that
	// ignores its context, or in a Read of content that never returns (a
	// FIFO or a hung network file system behind an fs.FS other than Dir).
	// That goroutine, its file and its socket stay until the call
	// returns; the server cannot interrupt it, only stop counting it.
	// Default DefaultStallTimeout (15 s); it must be at least Timeout.
	StallTimeout time.Duration

	// MaxBlockSize is the largest blksize granted (RFC 2348 allows 8 to
	// 65464). Default DefaultMaxBlockSize (1468, what fits an Ethernet
	// frame). The grant is further lowered to the path MTU of the
	// interface the request arrived on (MTU − 32 for IPv4, − 52 for IPv6),
	// so a client asking for 8192 on a 1500-byte link never gets IP
	// fragments.
	MaxBlockSize int
	// MaxWindowSize is the largest RFC 7440 windowsize granted. Default
	// DefaultMaxWindowSize (32, as dnsmasq; some clients break above 64).
	// Set 1 to acknowledge windowsize 1 only, that is lock-step.
	MaxWindowSize int

	// MaxTransfers caps concurrent transfers; further requests get TFTP
	// error 0 "server busy" and a log line. Default DefaultMaxTransfers.
	MaxTransfers int
	// MaxTransfersPerClient caps concurrent transfers per client IP
	// address, so that a few addresses cannot take every slot. Default
	// DefaultMaxTransfersPerClient (8), which leaves room for a client
	// that repeats its request before the first reply (each repeat costs
	// a slot). A sender spoofing many addresses is not held back by it;
	// StallTimeout still frees the slots of requests nobody acknowledges.
	MaxTransfersPerClient int

	// OnEvent, when set, is called at the start and end of every transfer
	// (see Event), from the transfer's goroutine or, for a transfer given
	// up by StallTimeout, the watchdog's: it must return quickly.
	OnEvent func(Event)

	mu        sync.Mutex
	inited    bool
	closed    bool
	ctx       context.Context
	cancel    context.CancelFunc
	listeners map[net.PacketConn]struct{}
	serving   sync.WaitGroup // Serve loops
	transfers sync.WaitGroup
	total     int
	perClient map[netip.Addr]int
	engine    *pinEngine
	mtus      mtuCache
	bufs      bufPool    // window rings, reused across transfers
	readers   readerPool // read-ahead buffers, likewise
}

// settings are the Server fields with defaults applied, fixed at Serve.
type settings struct {
	timeout      time.Duration
	retries      int
	maxBlock     int
	maxWindow    int
	maxTotal     int
	maxPerClient int
	maxClientTO  time.Duration
	stall        time.Duration
	pinRetries   int // Retries lowered so pin/tftp gives up within stall
}

func (s *Server) settings() (settings, error) {
	c := settings{
		timeout: s.Timeout, retries: s.Retries, maxBlock: s.MaxBlockSize, maxWindow: s.MaxWindowSize,
		maxTotal: s.MaxTransfers, maxPerClient: s.MaxTransfersPerClient,
		maxClientTO: s.MaxClientTimeout, stall: s.StallTimeout,
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"Retries", &c.retries, DefaultRetries},
		{"MaxBlockSize", &c.maxBlock, DefaultMaxBlockSize},
		{"MaxWindowSize", &c.maxWindow, DefaultMaxWindowSize},
		{"MaxTransfers", &c.maxTotal, DefaultMaxTransfers},
		{"MaxTransfersPerClient", &c.maxPerClient, DefaultMaxTransfersPerClient},
	} {
		if *f.v < 0 {
			return c, fmt.Errorf("tftpsrv: Server.%s is %d, must not be negative", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &c.timeout, DefaultTimeout},
		{"MaxClientTimeout", &c.maxClientTO, DefaultMaxClientTimeout},
		{"StallTimeout", &c.stall, DefaultStallTimeout},
	} {
		if *f.v < 0 {
			return c, fmt.Errorf("tftpsrv: Server.%s is %v, must not be negative", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.stall < c.timeout {
		return c, fmt.Errorf("tftpsrv: Server.StallTimeout (%v) is shorter than Timeout (%v)", c.stall, c.timeout)
	}
	// pin/tftp gives up after Timeout × (retries+1); keep that under
	// StallTimeout, so that it ends a silent client's transfer itself
	// (ErrTimeout) before the stall watchdog does.
	c.pinRetries = max(0, min(c.retries, int((c.stall-1)/c.timeout)-1))
	if c.maxBlock < minBlockSize || c.maxBlock > maxBlockSize {
		return c, fmt.Errorf("tftpsrv: Server.MaxBlockSize is %d, must be %d to %d", c.maxBlock, minBlockSize, maxBlockSize)
	}
	if c.maxWindow > maxWindowSize {
		return c, fmt.Errorf("tftpsrv: Server.MaxWindowSize is %d, must be at most %d", c.maxWindow, maxWindowSize)
	}
	if s.Handler == nil {
		return c, errors.New("tftpsrv: Server.Handler is nil")
	}
	return c, nil
}

// ListenAndServe opens a socket on the UDP address addr (":69" when
// empty) with Listen, whose errors explain themselves, and calls Serve. It
// always returns a non-nil error; after Shutdown or Close it is
// ErrServerClosed.
func (s *Server) ListenAndServe(addr string) error {
	if _, err := s.settings(); err != nil {
		return err
	}
	conn, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(conn)
}

// Serve answers requests arriving on conn until Shutdown or Close, then
// returns ErrServerClosed. It closes conn. Serve may be called for several
// sockets (say, one IPv4 and one IPv6) on one Server.
//
// With a *net.UDPConn the server learns, per request, the local address and
// interface, so replies leave from the address the client talked to and
// blksize is capped to the interface MTU.
func (s *Server) Serve(conn net.PacketConn) error {
	cfg, err := s.settings()
	if err != nil {
		conn.Close()
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return ErrServerClosed
	}
	if !s.inited {
		s.inited = true
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = map[net.PacketConn]struct{}{}
		s.perClient = map[netip.Addr]int{}
		s.engine = startPinEngine(cfg)
	}
	s.listeners[conn] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, conn)
		s.mu.Unlock()
		conn.Close()
	}()

	read := packetReader(conn)
	buf := make([]byte, 2048)
	for {
		n, peer, local, ifindex, err := read(buf)
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.handlePacket(cfg, buf[:n], n == len(buf), peer, local, ifindex)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// packetReader returns a function reading one datagram with, when conn can
// tell, its destination address and interface index.
func packetReader(conn net.PacketConn) func([]byte) (int, netip.AddrPort, netip.Addr, int, error) {
	plain := func(b []byte) (int, netip.AddrPort, netip.Addr, int, error) {
		n, src, err := conn.ReadFrom(b)
		return n, addrPortOf(src), netip.Addr{}, 0, err
	}
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return plain
	}
	la, _ := uc.LocalAddr().(*net.UDPAddr)
	if la != nil && la.IP.To4() != nil {
		p := ipv4.NewPacketConn(uc)
		if p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true) != nil {
			return plain
		}
		return func(b []byte) (int, netip.AddrPort, netip.Addr, int, error) {
			n, cm, src, err := p.ReadFrom(b)
			if cm == nil {
				return n, addrPortOf(src), netip.Addr{}, 0, err
			}
			dst, _ := netip.AddrFromSlice(cm.Dst)
			return n, addrPortOf(src), dst.Unmap(), cm.IfIndex, err
		}
	}
	p := ipv6.NewPacketConn(uc)
	if p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true) != nil {
		return plain
	}
	return func(b []byte) (int, netip.AddrPort, netip.Addr, int, error) {
		n, cm, src, err := p.ReadFrom(b)
		if cm == nil {
			return n, addrPortOf(src), netip.Addr{}, 0, err
		}
		dst, _ := netip.AddrFromSlice(cm.Dst)
		dst = dst.Unmap()
		if dst.Is6() && dst.IsLinkLocalUnicast() && cm.IfIndex > 0 {
			dst = dst.WithZone(strconv.Itoa(cm.IfIndex))
		}
		return n, addrPortOf(src), dst, cm.IfIndex, err
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// handlePacket vets one datagram on the listening socket. Everything that
// can be refused without reading content is refused here, synchronously,
// from a socket that is closed right after the ERROR is sent, so no refused
// request keeps a socket or a goroutine.
func (s *Server) handlePacket(cfg settings, b []byte, truncated bool, peer netip.AddrPort, local netip.Addr, ifindex int) {
	if !peer.IsValid() || peer.Port() == 0 {
		return
	}
	req, err := parseRequest(b)
	if err == nil && truncated {
		err = fmt.Errorf("%w: longer than %d bytes", errMalformed, len(b))
	}
	if err != nil {
		if len(b) >= 2 && (b[1] == byte(opRRQ) || b[1] == byte(opWRQ)) && b[0] == 0 {
			s.refuse(peer, local, "", &Error{Code: ErrCodeIllegalOp, Message: "malformed request"}, err)
		}
		// Stray DATA, ACK or ERROR packets to the listening port (late
		// packets of finished transfers) are dropped silently.
		return
	}
	if req.op == opWRQ {
		s.refuse(peer, local, req.name, ErrReadOnly, ErrReadOnly)
		return
	}
	name, err := CleanName(req.name)
	if err != nil {
		s.refuse(peer, local, req.name, err, err)
		return
	}
	if req.mode != "octet" && req.mode != "netascii" {
		err := &Error{Code: ErrCodeIllegalOp, Message: "transfer mode " + strconv.Quote(req.mode) + " not supported"}
		s.refuse(peer, local, name, err, err)
		return
	}
	if !s.acquire(cfg, peer) {
		s.refuse(peer, local, name, ErrBusy, ErrBusy)
		return
	}
	opts := make(map[string]string, len(req.opts))
	for _, o := range req.opts {
		opts[o.name] = o.value
	}
	maxBlock := cfg.maxBlock
	if ifindex > 0 {
		maxBlock = min(maxBlock, s.mtus.blockLimit(ifindex, peer.Addr().Is6()))
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	t := &transfer{
		srv: s, cfg: cfg, req: req, peer: peer, local: local, start: time.Now(),
		limits: optionLimits{maxBlock: maxBlock, maxWindow: cfg.maxWindow, maxTimeout: cfg.maxClientTO},
		r: &Request{
			Name: name, RawName: req.name, RemoteAddr: peer, LocalAddr: local, Options: opts, ctx: ctx,
		},
		ctx: ctx, cancel: cancel,
	}
	s.transfers.Add(1)
	t.watch()
	go t.run()
}

// acquire admits a transfer under MaxTransfers and MaxTransfersPerClient.
// A client that repeats its RRQ before our first reply gets a second
// transfer from another port, which it refuses with "unknown transfer ID",
// as with other servers; the limits bound that waste.
func (s *Server) acquire(cfg settings, peer netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.total >= cfg.maxTotal || s.perClient[peer.Addr()] >= cfg.maxPerClient {
		return false
	}
	s.total++
	s.perClient[peer.Addr()]++
	return true
}

func (s *Server) release(peer netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perClient[peer.Addr()]--; s.perClient[peer.Addr()] <= 0 {
		delete(s.perClient, peer.Addr())
	}
}

// refuse answers a request with an ERROR, logs it and reports an end event.
// wire decides what the client reads, cause what the log says.
func (s *Server) refuse(peer netip.AddrPort, local netip.Addr, name string, wire, cause error) {
	code, msg := wireError(wire)
	if s.Logger != nil {
		level := slog.LevelInfo
		if errors.Is(cause, ErrBusy) || errors.Is(cause, ErrInvalidName) || errors.Is(cause, ErrStalled) {
			level = slog.LevelWarn
		}
		s.Logger.Log(context.Background(), level, "tftp request refused",
			"client", peer.String(), "file", name, "code", int(code), "err", cause.Error())
	}
	sendError(local, peer, code, msg)
	s.emit(Event{Kind: TransferEnd, RemoteAddr: peer, Name: name, Size: -1, Err: cause})
}

func (s *Server) emit(e Event) {
	if s.OnEvent != nil {
		s.OnEvent(e)
	}
}

// sendError sends one ERROR packet from a fresh socket bound to the address
// the client talked to (a new transfer ID, as RFC 1350 asks) and closes it.
func sendError(local netip.Addr, peer netip.AddrPort, code ErrorCode, msg string) {
	conn, err := dialPeer(local, peer)
	if err != nil {
		return
	}
	_, _ = conn.Write(packError(code, msg))
	conn.Close()
}

// dialPeer makes a transfer socket: connected to the client, so the kernel
// drops packets from other hosts and reports a closed client port.
func dialPeer(local netip.Addr, peer netip.AddrPort) (*net.UDPConn, error) {
	var laddr *net.UDPAddr
	if local.IsValid() && !local.IsUnspecified() && !local.IsMulticast() && local != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	return net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(peer))
}

// Shutdown stops accepting requests, lets running transfers finish, and
// returns nil when they have. When ctx ends first it aborts the transfers
// still running (their clients get an ERROR) and returns ctx.Err() without
// waiting further, so a stalled client cannot hold it up. (A netascii
// transfer, run by pin/tftp, that is waiting for a silent client notices the
// abort only when its wait ends, within Timeout × (Retries+1) or
// StallTimeout; its goroutine and socket live until then.) Transfers given
// up by StallTimeout are not waited for, with one exception: pin/tftp's own
// shutdown waits for a netascii transfer stuck in a Read of its content, so
// with one of those Shutdown returns only at ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopListening()
	done := make(chan struct{})
	go func() {
		s.serving.Wait()
		s.transfers.Wait()
		s.mu.Lock()
		e := s.engine
		s.mu.Unlock()
		if e != nil {
			e.shutdown()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.abortAll()
		return ctx.Err()
	}
}

// Close stops accepting requests and aborts running transfers at once.
func (s *Server) Close() error {
	s.stopListening()
	s.abortAll()
	return nil
}

func (s *Server) stopListening() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.listeners {
		c.Close()
	}
}

func (s *Server) abortAll() {
	s.mu.Lock()
	cancel, e := s.cancel, s.engine
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if e != nil {
		go e.shutdown()
	}
}

// mtuCache remembers interface MTUs; looking one up costs a netlink dump.
type mtuCache struct {
	mu sync.Mutex
	m  map[int]mtuEntry
}

type mtuEntry struct {
	mtu int
	at  time.Time
}

// blockLimit is the largest blksize that fits the interface MTU without IP
// fragmentation (IPv4 20 + UDP 8 + TFTP 4 bytes of headers; IPv6 40 + 8 + 4).
func (c *mtuCache) blockLimit(ifindex int, v6 bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[ifindex]
	if !ok || time.Since(e.at) > 30*time.Second {
		e = mtuEntry{mtu: 0, at: time.Now()}
		if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
			e.mtu = ifi.MTU
		}
		if c.m == nil {
			c.m = map[int]mtuEntry{}
		}
		c.m[ifindex] = e
	}
	if e.mtu <= 0 {
		return maxBlockSize
	}
	return blockLimitForMTU(e.mtu, v6)
}

func blockLimitForMTU(mtu int, v6 bool) int {
	overhead := 32
	if v6 {
		overhead = 52
	}
	return max(min(mtu-overhead, maxBlockSize), defBlockSize)
}
