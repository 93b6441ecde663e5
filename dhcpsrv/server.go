package dhcpsrv

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// Mode selects what the server does.
type Mode string

// Modes. The zero value is ModeProxy.
const (
	// ModeProxy answers only network-boot clients (option 60 PXEClient or
	// HTTPClient, or iPXE) with boot information and never assigns an
	// address: another DHCP server on the segment does that.
	ModeProxy Mode = "proxy"
	// ModeFull is a complete DHCP server with pool, reservations and leases.
	ModeFull Mode = "full"
	// ModeOff runs nothing; Serve waits for shutdown.
	ModeOff Mode = "off"
)

// Sentinel errors.
var (
	// ErrServerClosed is returned by Serve after Shutdown.
	ErrServerClosed = errors.New("dhcpsrv: server closed")
	// ErrAlreadyServing reports a second server on the same interface and
	// port in this network namespace; both would answer every client.
	ErrAlreadyServing = errors.New("dhcpsrv: another server already serves this interface and port")
	// ErrReplyTooLarge reports a reply larger than the client accepts
	// (option 57, or 576 bytes).
	ErrReplyTooLarge = errors.New("dhcpsrv: reply exceeds the client's maximum message size")
	// ErrBootFileTooLong reports a boot file name that does not fit the
	// 128-byte BOOTP file field; it is never cut.
	ErrBootFileTooLong = errors.New("dhcpsrv: boot file name longer than 127 bytes")
)

// EventType names a DHCP message seen or sent.
type EventType string

// Event types, one per DHCP message type handled.
const (
	EventDiscover EventType = "DISCOVER"
	EventOffer    EventType = "OFFER"
	EventRequest  EventType = "REQUEST"
	EventAck      EventType = "ACK"
	EventNak      EventType = "NAK"
	EventDecline  EventType = "DECLINE"
	EventRelease  EventType = "RELEASE"
	EventInform   EventType = "INFORM"
)

// Event reports one message received from or sent to a client, for
// progress displays and for mapping client addresses to MACs.
// The client's MAC and architecture are in Client.
type Event struct {
	Type     EventType
	IP       netip.Addr // yiaddr of an OFFER/ACK, else the client's address; may be zero
	BootFile string     // boot file sent (replies) or to be sent; may be empty
	Client   Client
}

// ProbeFunc reports whether ip already answers on the network (ICMP echo,
// ARP). It is called before an address is offered the first time; a true
// result quarantines the address and another is chosen.
type ProbeFunc func(ctx context.Context, ip netip.Addr) (inUse bool, err error)

// Config configures a Server. Only Interface is required.
type Config struct {
	// Interface is the network interface to serve; replies leave through
	// it and the arrival interface of every request is known. Required.
	Interface string
	// Mode defaults to ModeProxy.
	Mode Mode
	// ServerIP is option 54 and the default TFTP server (siaddr). Default:
	// the first IPv4 address of Interface.
	ServerIP netip.Addr

	// Boot decides the boot answers. Default: &BootTable{} (the server's
	// own address as TFTP server, no HTTP boot, iPXE scripts over TFTP).
	// The server fills nothing into it: a BootTable whose ServerIP is zero
	// names the server itself, as a zero BootAnswer.ServerIP does.
	Boot BootPolicy

	// Subnet is the address plan of full mode (see SubnetFromInterface).
	Subnet Subnet
	// Leases stores leases in full mode. Default: a FileStore at LeaseFile,
	// or a MemoryStore when LeaseFile is empty. A SharedLeaseStore (such
	// as dhcpsrv/etcdstore) lets several servers serve one subnet; the
	// server does not close a store it did not open.
	Leases LeaseStore
	// LeaseFile is the path of the default FileStore.
	LeaseFile string
	// Probe checks an address before its first offer. Nil disables the
	// check (see ICMPProbe).
	Probe ProbeFunc

	// ProxyBypass adds PXE option 43 "discovery control = 8" (boot from
	// the file in this offer) to proxy offers. Default off: many UEFI
	// firmwares ignore offers that carry it.
	ProxyBypass bool

	// Workers bounds the concurrent handlers of requests whose answer may
	// block: a conflict probe (Probe), a Leases store other than the
	// built-in ones (with a SharedLeaseStore, DISCOVERs too, which look
	// the client up in it), a caller-supplied Boot. Everything else is
	// answered by the socket readers themselves, and lease writes of the built-in
	// stores never hold a goroutine: the answer is sent once the group
	// commit that holds its lease is on disk. Default 128.
	Workers int
	// Queue is the number of received packets waiting for a worker before
	// new ones are dropped. Default 1024.
	Queue int
	// RatePerMAC is the sustained number of requests per second accepted
	// from one MAC (burst 4× that). Default 10; negative disables.
	RatePerMAC float64

	// Logger receives logs; nil means silent. Requests dropped, NAKed or
	// left unanswered are not logged one by one but counted per reason
	// and summarised in one line per minute at most (Warn, or Debug when
	// only malformed packets and NAKs were counted).
	Logger *slog.Logger
	// OnEvent, if set, is called synchronously for every message handled.
	// It must be quick.
	OnEvent func(Event)

	// Port and ProxyPort default to 67 and 4011.
	Port, ProxyPort int
}

// Server is a DHCP server for network boot. Create it with New.
type Server struct {
	cfg   Config
	log   *slog.Logger
	boot  BootPolicy
	pool  *pool
	store LeaseStore
	owned bool // store opened by us
	rate  *rateLimiter
	now   func() time.Time
	// problems summarises requests without a normal answer; never one
	// log line per packet.
	problems *problemLog
	// bootMayBlock: Boot is not a *BootTable and may look things up
	// anywhere.
	bootMayBlock bool

	// Option values every reply carries, encoded once.
	serverID           []byte
	serverName         []byte // option 66 naming ServerIP, in text
	netOpts, leaseOpts []optionValue
	// replies holds reply messages (*dhcpv4.DHCPv4) for reuse; see
	// newReply.
	replies sync.Pool

	mu       sync.Mutex
	conns    []*net.UDPConn
	locks    []net.Conn
	serving  bool // Serve was called
	closed   bool
	shutdown chan struct{}
	wg       sync.WaitGroup
	pending  sync.WaitGroup // asynchronous lease writes whose answer is not sent yet
}

// New validates cfg and returns a Server; in full mode it opens the lease
// store and loads the leases.
func New(cfg Config) (*Server, error) {
	mode := cfg.Mode
	switch mode {
	case "":
		mode = ModeProxy
	case ModeProxy, ModeFull, ModeOff:
	default:
		return nil, fmt.Errorf("dhcpsrv: Config.Mode %q: want %q, %q or %q", capText(string(mode), maxLogText), ModeProxy, ModeFull, ModeOff)
	}
	cfg.Mode = mode
	s := &Server{cfg: cfg, log: cfg.Logger, now: time.Now, shutdown: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.problems = newProblemLog(s.log, problemInterval)
	if mode == ModeOff {
		return s, nil
	}
	if cfg.Interface == "" {
		return nil, errors.New("dhcpsrv: Config.Interface is required")
	}
	if !s.cfg.ServerIP.IsValid() {
		p, err := InterfaceAddr(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("dhcpsrv: no ServerIP given and %w", err)
		}
		s.cfg.ServerIP = p.Addr()
	}
	if !s.cfg.ServerIP.Is4() {
		return nil, fmt.Errorf("dhcpsrv: ServerIP %v is not IPv4", s.cfg.ServerIP)
	}
	if err := s.setDefaults(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) setDefaults() error {
	c := &s.cfg
	s.serverID = c.ServerIP.AsSlice()
	s.serverName = []byte(c.ServerIP.String())
	s.boot = c.Boot
	if s.boot == nil {
		s.boot = &BootTable{}
	}
	// A BootTable only looks at its fields and Files; anything else may
	// wait on a database or the network.
	_, table := s.boot.(*BootTable)
	s.bootMayBlock = !table
	if c.Workers <= 0 {
		c.Workers = 128
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.RatePerMAC == 0 {
		c.RatePerMAC = 10
	}
	if c.RatePerMAC > 0 {
		s.rate = newRateLimiter(c.RatePerMAC, 4*c.RatePerMAC)
	}
	if c.Port == 0 {
		c.Port = 67
	}
	if c.ProxyPort == 0 {
		c.ProxyPort = 4011
	}
	if c.Mode != ModeFull {
		return nil
	}
	if err := c.Subnet.validate(); err != nil {
		return err
	}
	s.netOpts = networkOptions(&c.Subnet, 0)
	s.leaseOpts = networkOptions(&c.Subnet, c.Subnet.LeaseTime)
	s.store = c.Leases
	if s.store == nil {
		if c.LeaseFile != "" {
			fst, err := OpenFileStore(c.LeaseFile)
			if err != nil {
				return err
			}
			s.store, s.owned = fst, true
		} else {
			s.store = NewMemoryStore()
		}
	}
	leases, err := s.store.Load(context.Background())
	if err != nil {
		if s.owned {
			s.store.Close()
		}
		return fmt.Errorf("dhcpsrv: load leases: %w", err)
	}
	s.pool = newPool(c.Subnet, leases)
	if _, shared := s.store.(SharedLeaseStore); shared {
		// Servers sharing a store do not see each other's offers: each
		// starts its scan for free addresses at its own place in the
		// range, so that two new clients are rarely offered one address
		// (one of them would be NAKed and start over).
		h := fnv.New32a()
		h.Write(s.cfg.ServerIP.AsSlice())
		s.pool.cursor = h.Sum32() % s.pool.size
	}
	return nil
}

// Leases returns a snapshot of the lease table (full mode; nil otherwise).
func (s *Server) Leases() []Lease {
	if s.pool == nil {
		return nil
	}
	return s.pool.snapshot()
}

// ServerIP is the address the server identifies itself with (option 54).
func (s *Server) ServerIP() netip.Addr { return s.cfg.ServerIP }

// packetWriter is the sending half of a UDP socket (a fake in tests).
type packetWriter interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// packet is a decoded request handed to the worker pool.
type packet struct {
	conn packetWriter
	port int
	src  netip.AddrPort
	req  *dhcpv4.DHCPv4
}

// Listen opens the server's sockets (ports 67 and 4011, bound to the
// interface) and takes its instance lock, without answering anything yet.
// It is the net.Listen half of Serve: a caller that announces "serving"
// calls Listen first, so that a port held by another program or a second
// server on the same interface (ErrAlreadyServing) is reported before the
// announcement. Serve then answers on these sockets; Shutdown closes them
// even if Serve never ran. Listen after Shutdown returns ErrServerClosed,
// and a second Listen, or Listen after Serve, returns an error. In ModeOff
// it opens nothing and returns nil.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if len(s.conns) > 0 || s.serving {
		return errors.New("dhcpsrv: already listening")
	}
	if s.cfg.Mode == ModeOff {
		return nil
	}
	return s.listenLocked()
}

// Serve answers on the interface until ctx ends or Shutdown is called. It
// uses the sockets opened by Listen, or opens them itself when Listen was
// not called (a second server on the same interface and port then gets
// ErrAlreadyServing from Serve). It returns ErrServerClosed after Shutdown
// and ctx.Err() when ctx ends. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("dhcpsrv: Serve called twice")
	}
	if s.cfg.Mode != ModeOff && len(s.conns) == 0 {
		if err := s.listenLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.serving = true
	// Counted under s.mu, before Shutdown can see closed==false and wait.
	s.wg.Add(1)
	conns := s.conns
	s.mu.Unlock()
	defer s.wg.Done()
	if s.cfg.Mode == ModeOff {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.shutdown:
			return ErrServerClosed
		}
	}
	return s.serveConns(ctx, conns)
}

// serveConns runs the loop over the sockets opened by listenLocked.
func (s *Server) serveConns(ctx context.Context, conns []*net.UDPConn) error {
	queue := make(chan packet, s.cfg.Queue)
	var workers sync.WaitGroup
	for i := 0; i < s.cfg.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for p := range queue {
				s.serveOne(ctx, p.conn, p.port, p.src, p.req, true)
			}
		}()
	}
	// Several readers per socket, each answering what it reads itself:
	// under load a reader finds the next packet already queued in the
	// socket and never parks, where a hand-off to a worker costs a
	// goroutine wake-up (and often a thread wake-up) per packet.
	nReaders := max(1, runtime.GOMAXPROCS(0))
	var readers sync.WaitGroup
	for _, c := range conns {
		port := c.LocalAddr().(*net.UDPAddr).Port
		for range nReaders {
			readers.Add(1)
			go func() {
				defer readers.Done()
				s.readLoop(ctx, c, port, queue)
			}()
		}
	}
	// The problem summary of a flood that stopped is written within an
	// interval, without waiting for the next problem.
	stopTick := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Add(1)
	go func() {
		defer ticker.Done()
		t := time.NewTicker(s.problems.every / 2)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.problems.tick(s.now())
			case <-stopTick:
				return
			}
		}
	}()
	// A shared store feeds the records of the other servers into the view.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	if sh, ok := s.store.(SharedLeaseStore); ok {
		watcher.Add(1)
		go func() {
			defer watcher.Done()
			sh.Watch(watchCtx, func(l Lease) { s.pool.apply(l, s.now()) })
		}()
	}
	s.log.Info("dhcp serving", "iface", s.cfg.Interface, "mode", s.cfg.Mode, "server_ip", s.cfg.ServerIP)
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.shutdown:
		err = ErrServerClosed
	}
	s.closeConns()
	stopWatch()
	watcher.Wait()
	readers.Wait()
	close(queue)
	workers.Wait()
	s.pending.Wait()
	close(stopTick)
	ticker.Wait()
	s.problems.flush(s.now())
	return err
}

// readLoop receives packets and hands each to receive.
func (s *Server) readLoop(ctx context.Context, c *net.UDPConn, port int, queue chan<- packet) {
	buf := make([]byte, 1500)
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		// The decoded message copies what it keeps, so buf is free again.
		s.receive(ctx, c, port, src, buf[:n], queue)
	}
}

// receive decodes one datagram and answers it, unless it is malformed or
// over its MAC's rate; an answer that may block (see mayBlock) is left to
// the worker pool.
func (s *Server) receive(ctx context.Context, c packetWriter, port int, src netip.AddrPort, b []byte, queue chan<- packet) {
	req, err := decode(b)
	if err != nil {
		s.problems.add(s.now(), reasonMalformed, src.String(), err)
		return
	}
	if s.rate != nil && len(req.ClientHWAddr) > 0 && !s.rate.allow(req.ClientHWAddr, s.now()) {
		s.problems.add(s.now(), reasonRateLimited, req.ClientHWAddr.String(), nil)
		return
	}
	if !s.mayBlock(req, port) {
		s.serveOne(ctx, c, port, src, req, false)
		return
	}
	select {
	case queue <- packet{conn: c, port: port, src: src, req: req}:
	default:
		s.problems.add(s.now(), reasonQueueFull, req.ClientHWAddr.String(), nil)
	}
}

// mayBlock reports whether answering req may wait on something slower than
// the CPU: a conflict probe, a lease store without asynchronous writes, or
// a caller-supplied boot decision (which may look things up anywhere).
func (s *Server) mayBlock(req *dhcpv4.DHCPv4, port int) bool {
	if s.bootMayBlock {
		if _, ok := req.Options[optVendorClass]; ok {
			return true
		}
		if _, ok := req.Options[optUserClass]; ok {
			return true
		}
		if _, ok := req.Options[optEtherboot]; ok {
			return true
		}
	}
	if s.cfg.Mode != ModeFull || port == s.cfg.ProxyPort {
		return false
	}
	switch messageType(req) {
	case dhcpv4.MessageTypeDiscover:
		_, shared := s.store.(SharedLeaseStore)
		return s.cfg.Probe != nil || shared
	case dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeRelease:
		_, async := s.store.(asyncStore)
		return !async
	}
	return false
}

// listenLocked opens the sockets and takes the instance locks. Caller
// holds s.mu.
func (s *Server) listenLocked() error {
	ports := []int{s.cfg.Port, s.cfg.ProxyPort}
	for _, port := range ports {
		lock, err := instanceLock(s.cfg.Interface, port)
		if err != nil {
			s.closeLocked()
			return err
		}
		s.locks = append(s.locks, lock)
		// A proxy may share the host with the DHCP server that gives the
		// addresses: SO_REUSEADDR and SO_REUSEPORT let both sockets bind
		// port 67 (the other side must allow it too, as dnsmasq does with
		// --bind-interfaces), and the kernel gives broadcasts to both.
		c, err := listenUDP(s.cfg.Interface, port, s.cfg.Mode == ModeProxy)
		if err != nil {
			s.closeLocked()
			return err
		}
		s.conns = append(s.conns, c)
	}
	return nil
}

// instanceLock takes an abstract Unix socket name, which is unique per
// network namespace and vanishes with the process (kill -9 included).
func instanceLock(iface string, port int) (net.Conn, error) {
	name := fmt.Sprintf("@pxekit-dhcpsrv/%s/%d", iface, port)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w (%s port %d): a second pxekit in this network namespace holds the port", ErrAlreadyServing, iface, port)
		}
		return nil, fmt.Errorf("dhcpsrv: instance lock: %w", err)
	}
	return c, nil
}

func listenUDP(iface string, port int, reuse bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// SO_BINDTODEVICE: broadcasts leave through this interface
			// only, and sockets on other interfaces may use the same port.
			if serr = syscall.BindToDevice(int(fd), iface); serr != nil {
				return
			}
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); serr != nil {
				return
			}
			if reuse {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
					return
				}
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return nil, listenError(iface, port, reuse, err)
	}
	return pc.(*net.UDPConn), nil
}

// listenError says why a DHCP port could not be opened and what to do,
// keeping err for errors.Is.
func listenError(iface string, port int, reuse bool, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint := ""
		if reuse {
			hint = "; a DHCP server sharing this host must allow port sharing (dnsmasq --bind-interfaces)"
		}
		return fmt.Errorf("%w: %s port %d: another DHCP server (dnsmasq, dhcpd, a second pxekit?) holds the port%s: %w", ErrAlreadyServing, iface, port, hint, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("dhcpsrv: listen on %s port %d: %w: ports 67 and 4011 need root or CAP_NET_BIND_SERVICE (and binding to an interface CAP_NET_RAW on older kernels)", iface, port, err)
	}
	return fmt.Errorf("dhcpsrv: listen on %s port %d: %w", iface, port, err)
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *Server) closeLocked() {
	for _, c := range s.conns {
		c.Close()
	}
	for _, l := range s.locks {
		l.Close()
	}
	s.conns, s.locks = nil, nil
}

// Shutdown stops Serve, waits for the handlers in flight (bounded by ctx)
// and closes a lease store the server opened itself. Handlers in flight
// finish their lease writes, so no ACK is lost half-way.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.shutdown)
	}
	s.closeLocked()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.owned {
		return s.store.Close()
	}
	return nil
}

// serveOne answers one decoded request. With sync false, a lease the
// answer depends on is written asynchronously and the answer leaves from
// the store's goroutine once the lease is durable; with sync true (workers)
// it is written before serveOne returns.
func (s *Server) serveOne(ctx context.Context, conn packetWriter, port int, src netip.AddrPort, req *dhcpv4.DHCPv4, sync bool) {
	var out *reply
	var err error
	if sync {
		out, err = s.handle(ctx, req, port, src)
	} else {
		out, err = s.prepare(ctx, req, port, src)
	}
	if err != nil {
		s.logUnanswered(req, err)
		return
	}
	if out == nil {
		return
	}
	if out.lease != nil {
		s.pending.Add(1)
		s.store.(asyncStore).putAsync(*out.lease, func(err error) {
			defer s.pending.Done()
			if err != nil {
				s.logUnanswered(req, fmt.Errorf("%s: %w", out.failed, err))
				if alt := out.storeFailed(err); alt != nil {
					s.send(conn, alt)
				}
				return
			}
			out.commit()
			s.send(conn, out)
		})
		return
	}
	s.send(conn, out)
}

// logUnanswered counts a request left unanswered by err in the problem
// summary.
func (s *Server) logUnanswered(req *dhcpv4.DHCPv4, err error) {
	s.problems.add(s.now(), reasonOf(err), req.ClientHWAddr.String(), err)
}

// send writes an answer (none for a stored DECLINE or RELEASE) and reports
// it.
func (s *Server) send(conn packetWriter, out *reply) {
	if out.bytes == nil {
		return
	}
	if _, err := conn.WriteToUDPAddrPort(out.bytes, out.dst); err != nil {
		s.problems.add(s.now(), reasonSendFailed, out.ev.Client.MAC.String()+" to "+out.dst.String(), err)
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("dhcp sent", "type", out.ev.Type, macAttr(out.ev.Client.MAC), "ip", out.ev.IP, "dst", out.dst, "file", out.ev.BootFile)
	}
	s.emit(out.ev)
}

func (s *Server) emit(ev Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

// rateLimiter is a per-key token bucket; it forgets idle keys so its memory
// stays bounded by the number of recently active clients.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

func (r *rateLimiter) allow(key []byte, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.sweep) > time.Minute {
		for k, b := range r.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(r.buckets, k)
			}
		}
		r.sweep = now
	}
	b := r.buckets[string(key)] // no allocation for the lookup
	if b == nil {
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[string(key)] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
