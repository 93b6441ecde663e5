package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// The load generator of the DHCP suite. On a 2-core machine it shares the
// CPU with the server it measures, so whatever it spends per exchange is
// taken from the server: it is one goroutine on one socket, with no lock,
// channel, timer or allocation per packet. Requests are pre-built and only
// xid, chaddr (and in a REQUEST, options 50 and 54) are patched; replies
// are read in batches with recvmmsg and the requests they cause are sent
// in batches with sendmmsg, so that a busy round costs two system calls
// however many clients advance in it.

const (
	genTimeout = time.Second // wait for an answer before sending again
	genTries   = 3           // sends per exchange before the client counts as failed
	genTick    = 20 * time.Millisecond
	genBufLen  = 1500
)

// genSlot is one of the dhcpConc clients in flight.
type genSlot struct {
	mac      int // index of the MAC, -1 when idle
	phase    int // 0: DISCOVER sent, 1: REQUEST sent
	tries    int
	t0, sent time.Time
	pkt      []byte // the request in flight (patched template)
	queued   bool   // pkt is in the next send batch
	discTmpl bool   // pkt holds the DISCOVER template (else the REQUEST)
}

// dhcpTemplates are the pre-encoded requests and where their variable
// fields are.
type dhcpTemplates struct {
	discover, request []byte
	optReqIP, optSrv  int // offsets of the values of options 50 and 54 in request
}

func newTemplates(pxe bool) (dhcpTemplates, error) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0}
	var t dhcpTemplates
	t.discover = benchDiscover(mac, 0, pxe).ToBytes()
	req := benchDiscover(mac, 0, pxe)
	req.Options.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	req.Options.Update(dhcpv4.OptServerIdentifier(net.IPv4(1, 1, 1, 1)))
	req.Options.Update(dhcpv4.OptRequestedIPAddress(net.IPv4(2, 2, 2, 2)))
	t.request = req.ToBytes()
	t.optReqIP = optionOffset(t.request, 50)
	t.optSrv = optionOffset(t.request, 54)
	if t.optReqIP < 0 || t.optSrv < 0 || len(t.discover) > genBufLen || len(t.request) > genBufLen {
		return t, errors.New("request templates: options 50/54 not found")
	}
	return t, nil
}

// optionOffset returns the offset of the value of option code in the
// encoded message b (which must carry exactly 4 bytes of it), or -1.
func optionOffset(b []byte, code byte) int {
	if len(b) < 240 || binary.BigEndian.Uint32(b[236:240]) != 0x63825363 {
		return -1
	}
	at, n, _ := scanOptions(b, code)
	if at < 0 || (n != 4 && code != 53) {
		return -1
	}
	return at
}

// scanOptions walks the options of the encoded message b and returns
// where the value of the first option code starts (-1: none) and its
// length, and where the end option is (-1: none, or a malformed option
// stopped the walk). The walk is bounded by b: replies come from the
// server under test.
func scanOptions(b []byte, code byte) (at, n, end int) {
	at, end = -1, -1
	if len(b) < 240 {
		return at, 0, end
	}
	for i := 240; i < len(b); {
		switch b[i] {
		case 0:
			i++
			continue
		case 255:
			return at, n, i
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			return at, n, -1
		}
		if b[i] == code && at < 0 {
			at, n = i+2, int(b[i+1])
		}
		i += 2 + int(b[i+1])
	}
	return at, n, -1
}

// replyFacts is what the generator reads from a reply: its transaction,
// type, yiaddr and server identifier; ok is false for anything malformed.
func replyFacts(b []byte) (xid uint32, typ dhcpv4.MessageType, yi, srv [4]byte, ok bool) {
	if len(b) < 240 || b[0] != byte(dhcpv4.OpcodeBootReply) {
		return 0, 0, yi, srv, false
	}
	xid = binary.BigEndian.Uint32(b[4:8])
	copy(yi[:], b[16:20])
	i := optionOffset(b, 53)
	if i < 0 || i >= len(b) {
		return 0, 0, yi, srv, false
	}
	typ = dhcpv4.MessageType(b[i])
	if j := optionOffset(b, 54); j >= 0 && j+4 <= len(b) {
		copy(srv[:], b[j:j+4])
	}
	return xid, typ, yi, srv, true
}

// genXID is the transaction ID of MAC index i in a phase: distinct per
// client and phase within a run and across the seeds of the runs.
func genXID(seed byte, i, phase int) uint32 {
	return uint32(seed)<<24 | uint32(i)<<1 | uint32(phase)
}

// mmsgConn batches datagrams on one UDP socket through its RawConn, so
// the Go poller still does the waiting.
type mmsgConn struct {
	rc   syscall.RawConn
	conn *net.UDPConn
	dst  unix.RawSockaddrInet4

	sendHdr []unix.Mmsghdr
	sendIov []unix.Iovec
	recvHdr []unix.Mmsghdr
	recvIov []unix.Iovec
	recvBuf [][]byte

	sendFn, recvFn func(fd uintptr) bool
	n              int
	errno          syscall.Errno
	deadline       time.Time
}

func newMmsgConn(c *net.UDPConn, dst netip.AddrPort, batch int) (*mmsgConn, error) {
	if !dst.Addr().Is4() {
		return nil, errors.New("load generator: destination is not IPv4")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	m := &mmsgConn{rc: rc, conn: c, sendHdr: make([]unix.Mmsghdr, batch), sendIov: make([]unix.Iovec, batch),
		recvHdr: make([]unix.Mmsghdr, batch), recvIov: make([]unix.Iovec, batch), recvBuf: make([][]byte, batch)}
	m.sendFn, m.recvFn = m.sendmmsg, m.recvmmsg
	m.dst.Family = unix.AF_INET
	m.dst.Addr = dst.Addr().As4()
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&m.dst.Port))[:], dst.Port())
	for i := range batch {
		m.recvBuf[i] = make([]byte, genBufLen)
		m.recvIov[i].Base = &m.recvBuf[i][0]
		m.recvIov[i].SetLen(genBufLen)
		m.recvHdr[i].Hdr.Iov = &m.recvIov[i]
		m.recvHdr[i].Hdr.SetIovlen(1)
	}
	return m, nil
}

// send sends pkts to the destination, all of them unless the socket fails.
func (m *mmsgConn) send(pkts [][]byte) error {
	for len(pkts) > 0 {
		n := min(len(pkts), len(m.sendHdr))
		for i, p := range pkts[:n] {
			m.sendIov[i].Base = &p[0]
			m.sendIov[i].SetLen(len(p))
			m.sendHdr[i].Hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&m.dst)), Namelen: unix.SizeofSockaddrInet4, Iov: &m.sendIov[i]}
			m.sendHdr[i].Hdr.SetIovlen(1)
		}
		m.n, m.errno = n, 0
		if err := m.rc.Write(m.sendFn); err != nil {
			return err
		}
		if m.errno != 0 {
			return m.errno
		}
		pkts = pkts[max(m.n, 1):]
	}
	return nil
}

// sendmmsg and recvmmsg are the RawConn callbacks, bound once (a closure
// per call would be an allocation per batch): m.n is the number of
// messages in, then the number done.
func (m *mmsgConn) sendmmsg(fd uintptr) bool { return m.mmsg(unix.SYS_SENDMMSG, fd, m.sendHdr) }
func (m *mmsgConn) recvmmsg(fd uintptr) bool { return m.mmsg(unix.SYS_RECVMMSG, fd, m.recvHdr) }

func (m *mmsgConn) mmsg(trap, fd uintptr, hdr []unix.Mmsghdr) bool {
	r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&hdr[0])), uintptr(m.n), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	m.n, m.errno = int(r), e
	return true
}

// recv waits until deadline for datagrams and returns how many of recvBuf
// hold one (their lengths in recvHdr[i].Len); 0 after the deadline. The
// socket's deadline is only set when it changes: resetting its timer per
// call would cost as much as the receive.
func (m *mmsgConn) recv(deadline time.Time) (int, error) {
	if !deadline.Equal(m.deadline) {
		if err := m.conn.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		m.deadline = deadline
	}
	m.n, m.errno = len(m.recvHdr), 0
	err := m.rc.Read(m.recvFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if m.errno != 0 {
		return 0, m.errno
	}
	return m.n, nil
}

// loadGen runs DORA (or DISCOVER->OFFER only) for dhcpMACs clients,
// dhcpConc at a time, through the relay socket c to the server at dst.
// Every client waits genTimeout for each answer and sends up to genTries
// times.
func loadGen(ctx context.Context, c *net.UDPConn, dst netip.AddrPort, pxe, discoverOnly bool, macSeed byte) doraResult {
	var r doraResult
	tm, err := newTemplates(pxe)
	if err != nil {
		r.failed = dhcpMACs
		return r
	}
	mc, err := newMmsgConn(c, dst, dhcpConc)
	if err != nil {
		r.failed = dhcpMACs
		return r
	}
	defer c.SetReadDeadline(time.Time{})
	slots := make([]genSlot, dhcpConc)
	// inFlight maps a MAC index to its slot (+1; 0: none), so that a
	// reply finds its client without a map.
	inFlight := make([]int16, dhcpMACs)
	lat := make([]time.Duration, dhcpMACs)
	batch := make([][]byte, 0, dhcpConc)
	next, finished := 0, 0

	start := func(s *genSlot, si int, now time.Time) {
		if next >= dhcpMACs {
			s.mac = -1
			return
		}
		i := next
		next++
		s.mac, s.phase, s.tries, s.t0, s.sent = i, 0, 1, now, now
		if s.pkt == nil {
			s.pkt = make([]byte, 0, genBufLen)
		}
		if !s.discTmpl {
			s.pkt = append(s.pkt[:0], tm.discover...)
			s.discTmpl = true
		}
		binary.BigEndian.PutUint32(s.pkt[4:8], genXID(macSeed, i, 0))
		s.pkt[28], s.pkt[29], s.pkt[30], s.pkt[31], s.pkt[32], s.pkt[33] = 0x02, macSeed, 0, byte(i>>16), byte(i>>8), byte(i)
		inFlight[i] = int16(si + 1)
		s.queued = true
		batch = append(batch, s.pkt)
	}
	end := func(s *genSlot, si int, now time.Time, ok bool) {
		inFlight[s.mac] = 0
		if ok {
			lat[s.mac] = max(now.Sub(s.t0), 1)
		}
		finished++
		start(s, si, now)
	}

	t0 := time.Now()
	for si := range slots {
		slots[si].mac = -1
		start(&slots[si], si, t0)
	}
	lastScan, deadline := t0, t0.Add(genTick)
	for finished < dhcpMACs && ctx.Err() == nil {
		if len(batch) > 0 {
			if err := mc.send(batch); err != nil {
				break
			}
			for i := range slots {
				slots[i].queued = false
			}
			batch = batch[:0]
		}
		n, err := mc.recv(deadline)
		if err != nil {
			break
		}
		now := time.Now()
		if !now.Before(deadline) {
			deadline = now.Add(genTick)
		}
		for k := range n {
			b := mc.recvBuf[k][:mc.recvHdr[k].Len]
			xid, typ, yi, srv, ok := replyFacts(b)
			if !ok || xid>>24 != uint32(macSeed) {
				continue
			}
			i, phase := int(xid>>1&0x7fffff), int(xid&1)
			if i >= dhcpMACs || inFlight[i] == 0 {
				continue // late answer to a client already done
			}
			si := int(inFlight[i]) - 1
			s := &slots[si]
			if s.phase != phase || s.queued {
				continue
			}
			switch {
			case phase == 0 && typ == dhcpv4.MessageTypeOffer && discoverOnly:
				end(s, si, now, true)
			case phase == 0 && typ == dhcpv4.MessageTypeOffer:
				s.phase, s.tries, s.sent = 1, 1, now
				s.pkt = append(s.pkt[:0], tm.request...)
				s.discTmpl = false
				binary.BigEndian.PutUint32(s.pkt[4:8], genXID(macSeed, i, 1))
				s.pkt[28], s.pkt[29], s.pkt[30], s.pkt[31], s.pkt[32], s.pkt[33] = 0x02, macSeed, 0, byte(i>>16), byte(i>>8), byte(i)
				copy(s.pkt[tm.optReqIP:], yi[:])
				copy(s.pkt[tm.optSrv:], srv[:])
				s.queued = true
				batch = append(batch, s.pkt)
			case phase == 1 && typ == dhcpv4.MessageTypeAck:
				end(s, si, now, true)
			}
		}
		// Retransmissions: a scan of the slots per tick, not a timer per
		// client.
		if now.Sub(lastScan) >= genTick {
			lastScan = now
			for si := range slots {
				s := &slots[si]
				if s.mac < 0 || s.queued || now.Sub(s.sent) < genTimeout {
					continue
				}
				if s.tries >= genTries {
					r.failed++
					end(s, si, now, false)
					continue
				}
				s.tries++
				s.sent = now
				s.queued = true
				batch = append(batch, s.pkt)
			}
		}
	}
	el := time.Since(t0)
	r.failed += dhcpMACs - finished // cut short by ctx or a socket error
	got := make([]time.Duration, 0, dhcpMACs)
	for _, d := range lat {
		if d > 0 {
			got = append(got, d)
		}
	}
	sort.Slice(got, func(a, b int) bool { return got[a] < got[b] })
	r.perSec = float64(len(got)) / el.Seconds()
	if len(got) > 0 {
		r.p50, r.p99 = got[len(got)/2], got[len(got)*99/100]
	}
	return r
}

// The null responder answers every DISCOVER with an OFFER and every
// REQUEST with an ACK by patching the request in place, storing nothing:
// measured like a peer (PXEKIT_BENCH_DHCP_PEERS=null), it shows what the
// load generator and the network path alone cost and allow.
const (
	nullServeEnv = "PXEKIT_BENCH_NULLDHCP"
	nullPeerName = "null responder"
)

func init() {
	if os.Getenv(nullServeEnv) == "" {
		return
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 67})
	if err == nil {
		err = serveNull(c, netip.MustParseAddr(benchSrvIP))
	}
	if err != nil {
		os.Stderr.WriteString("null responder: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

func nullDHCPPeer(self string) dhcpPeer {
	return dhcpPeer{name: nullPeerName, start: func(ctx context.Context, n *benchNet, _ string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.srvNS, self)
		cmd.Env = append(os.Environ(), nullServeEnv+"=1")
		cmd.Stderr = os.Stderr
		return cmd, cmd.Start()
	}}
}

// serveNull runs the null responder on c, naming itself srv (option 54),
// until c fails or is closed.
func serveNull(c *net.UDPConn, srv netip.Addr) error {
	buf := make([]byte, genBufLen)
	out := make([]byte, 0, genBufLen+8)
	sid := srv.As4()
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		b := buf[:n]
		i, end := optionOffset(b, 53), optionsEnd(b)
		if i < 0 || end < 0 {
			continue
		}
		out = append(out[:0], b[:end]...)
		out[0] = byte(dhcpv4.OpcodeBootReply)
		switch dhcpv4.MessageType(b[i]) {
		case dhcpv4.MessageTypeDiscover:
			out[i] = byte(dhcpv4.MessageTypeOffer)
		case dhcpv4.MessageTypeRequest:
			out[i] = byte(dhcpv4.MessageTypeAck)
		default:
			continue
		}
		copy(out[16:20], []byte{10, 232, 1 + b[32]%250, b[33]})
		out = append(out, 54, 4, sid[0], sid[1], sid[2], sid[3], 255)
		if _, err := c.WriteToUDPAddrPort(out, src); err != nil {
			return err
		}
	}
}

// optionsEnd returns the offset of the end option of b, or -1.
func optionsEnd(b []byte) int {
	_, _, end := scanOptions(b, 0)
	return end
}

// selfCPU is the user+system CPU time of this process: the load generator
// (the servers run in processes of their own).
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the first three fields of /proc/loadavg, for the record
// of how busy the shared machine was during a run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
