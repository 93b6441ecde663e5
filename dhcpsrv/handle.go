package dhcpsrv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// reply is an encoded answer and where it goes. When lease is set, the
// lease must be durable before the answer is sent (or, without an answer,
// before commit runs): that ordering is what makes an ACK a promise.
type reply struct {
	bytes []byte // nil: nothing to send
	dst   netip.AddrPort
	ev    Event

	lease *Lease
	// prior, if set, is stored (and applied) before lease: the release of
	// the dynamic lease of a client that now gets its reservation, which
	// a shared store would otherwise refuse as a second address.
	prior  *Lease
	commit func() // applies lease to the pool once it is durable
	failed string // prefix of the error when the lease could not be stored
	// fallback, if set, gives the answer to send when storing lease failed
	// with err (a NAK on ErrConflict, an ACK from the view for a renewal
	// while the store is unavailable); nil: no answer.
	fallback func(err error) *reply
}

var broadcast68 = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 68)

// handle turns one request into at most one reply. It does no socket I/O
// (the lease store aside), so tests and fuzzing drive it directly. A nil
// reply with a nil error means "stay silent", which RFC 2131 often requires.
func (s *Server) handle(ctx context.Context, req *dhcpv4.DHCPv4, port int, src netip.AddrPort) (*reply, error) {
	out, err := s.prepare(ctx, req, port, src)
	if err != nil || out == nil || out.lease == nil {
		return out, err
	}
	if out.prior != nil {
		// A refusal means the old lease is no longer the client's; the
		// lease itself then decides.
		if err := s.store.Put(ctx, *out.prior); err == nil {
			s.pool.commit(*out.prior)
		} else if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%s: %w", out.failed, err)
		}
	}
	if err := s.store.Put(ctx, *out.lease); err != nil {
		if alt := out.storeFailed(err); alt != nil {
			// A conflict is counted as the NAK it becomes; an outage
			// is counted although the renewal is answered.
			if !errors.Is(err, ErrConflict) {
				s.problems.add(s.now(), reasonOf(err), req.ClientHWAddr.String(), fmt.Errorf("%s: %w", out.failed, err))
			}
			return alt, nil
		}
		return nil, fmt.Errorf("%s: %w", out.failed, err)
	}
	out.commit()
	if out.bytes == nil {
		return nil, nil
	}
	out.lease, out.commit = nil, nil // done: the reply may be sent now
	return out, nil
}

// storeFailed is the answer to send instead when storing r.lease failed
// with err; nil when there is none.
func (r *reply) storeFailed(err error) *reply {
	if r.fallback == nil {
		return nil
	}
	return r.fallback(err)
}

// prepare is handle without the lease write: a reply carrying a lease is
// returned unsent, for the caller to store the lease first (synchronously
// in handle, or batched with other leases by the serving loop).
func (s *Server) prepare(ctx context.Context, req *dhcpv4.DHCPv4, port int, src netip.AddrPort) (*reply, error) {
	c, err := Classify(req)
	if err != nil {
		return nil, err
	}
	// Requests to the PXE boot-server port (4011) only ever get boot
	// information, in both modes: the address comes from elsewhere.
	proxy := port == s.cfg.ProxyPort || s.cfg.Mode == ModeProxy
	// Client.Proxy is about where the client's address came from: in full
	// mode a port-4011 request follows our own ACK, whose siaddr GRUB reads.
	c.Proxy = s.cfg.Mode == ModeProxy
	ev := Event{IP: c.ClientIP, Client: c}
	switch c.Type {
	case dhcpv4.MessageTypeDiscover:
		ev.Type = EventDiscover
	case dhcpv4.MessageTypeRequest:
		ev.Type = EventRequest
		if c.RequestedIP.IsValid() {
			ev.IP = c.RequestedIP
		}
	case dhcpv4.MessageTypeDecline:
		ev.Type, ev.IP = EventDecline, c.RequestedIP
	case dhcpv4.MessageTypeRelease:
		ev.Type = EventRelease
	case dhcpv4.MessageTypeInform:
		ev.Type = EventInform
	default:
		return nil, nil
	}
	s.emit(ev)

	if proxy {
		return s.handleProxy(req, c, port, src)
	}
	switch c.Type {
	case dhcpv4.MessageTypeDiscover:
		return s.discover(ctx, req, c)
	case dhcpv4.MessageTypeRequest:
		return s.request(ctx, req, c)
	case dhcpv4.MessageTypeDecline:
		return s.decline(c), nil
	case dhcpv4.MessageTypeRelease:
		return s.release(c), nil
	case dhcpv4.MessageTypeInform:
		return s.inform(req, c)
	}
	return nil, nil
}

// handleProxy answers PXE clients without assigning addresses: an OFFER to
// a DISCOVER on port 67, an ACK to a REQUEST or INFORM on port 4011.
func (s *Server) handleProxy(req *dhcpv4.DHCPv4, c Client, port int, src netip.AddrPort) (*reply, error) {
	if !c.Booting() {
		return nil, nil
	}
	var typ dhcpv4.MessageType
	switch {
	case c.Type == dhcpv4.MessageTypeDiscover && port != s.cfg.ProxyPort:
		typ = dhcpv4.MessageTypeOffer
	case c.Type == dhcpv4.MessageTypeRequest && port == s.cfg.ProxyPort:
		// Only on 4011: a REQUEST on port 67 belongs to the server giving
		// the address, which may share our host and address (same option
		// 54); an ACK without yiaddr from us could win the race.
		typ = dhcpv4.MessageTypeAck
	case c.Type == dhcpv4.MessageTypeInform && port == s.cfg.ProxyPort:
		typ = dhcpv4.MessageTypeAck
	default:
		return nil, nil
	}
	ans, err := s.boot.Decide(c)
	if err != nil {
		return nil, fmt.Errorf("boot decision for %v (arch %v): %w", c.MAC, c.Arch, err)
	}
	r := s.newReply(req, typ)
	if err := s.addBoot(r, c, ans, true); err != nil {
		return nil, err
	}
	if s.cfg.ProxyBypass && c.PXE {
		// PXE discovery control 8: use the boot file of this offer, skip
		// the boot-server discovery; terminated by the end sub-option.
		r.Options[optPXEVendor] = []byte{6, 1, 8, 255}
	}
	dst := s.route(req, c, typ)
	if port == s.cfg.ProxyPort && src.Addr().IsValid() && !src.Addr().IsUnspecified() {
		dst = src
	}
	return s.finish(r, c, dst, ans.File)
}

// newReply starts a reply to req. The message comes from s.replies and
// goes back there once finish has encoded it: the option map of a reply is
// the largest allocation of a request, and only its bytes outlive finish.
func (s *Server) newReply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	r, _ := s.replies.Get().(*dhcpv4.DHCPv4)
	var opts dhcpv4.Options
	if r == nil {
		r, opts = new(dhcpv4.DHCPv4), make(dhcpv4.Options, 16)
	} else {
		opts = r.Options // cleared by finish
	}
	*r = dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootReply, HWType: req.HWType, TransactionID: req.TransactionID,
		Flags: req.Flags, ClientHWAddr: req.ClientHWAddr,
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr, Options: opts,
	}
	if r.GatewayIPAddr == nil {
		r.GatewayIPAddr = net.IPv4zero
	}
	if typ == dhcpv4.MessageTypeAck || typ == dhcpv4.MessageTypeNak {
		r.ClientIPAddr = req.ClientIPAddr
		if r.ClientIPAddr == nil {
			r.ClientIPAddr = net.IPv4zero
		}
	}
	r.Options[uint8(dhcpv4.OptionDHCPMessageType)] = []byte{byte(typ)}
	r.Options[uint8(dhcpv4.OptionServerIdentifier)] = s.serverID
	if v, ok := req.Options[82]; ok {
		r.Options[82] = v
	}
	if v, ok := req.Options[61]; ok {
		r.Options[61] = v // RFC 6842
	}
	if v, ok := req.Options[optClientGUID]; ok {
		r.Options[optClientGUID] = v // PXE 2.1: echo the client GUID
	}
	return r
}

// addBoot writes the boot answer consistently: siaddr, `file`, options 66,
// 67 and 60, and echoes the client GUID (option 97) as PXE requires.
// pxe says the reply is a PXE one (proxy or port 4011), which names itself
// "PXEClient". A full-mode OFFER or ACK does not: an address with a boot
// file is complete, as dhcpd's next-server/filename answer is, and
// "PXEClient" in it would announce boot-server discovery (OVMF then also
// asks port 4011 and waits about a second). "HTTPClient" is always echoed:
// HTTP boot ignores an offer without it.
func (s *Server) addBoot(r *dhcpv4.DHCPv4, c Client, ans BootAnswer, pxe bool) error {
	if len(ans.File) > 127 {
		return fmt.Errorf("%w: %q", ErrBootFileTooLong, capText(ans.File, maxLogText))
	}
	srv := ans.ServerIP
	if !srv.IsValid() {
		srv = s.cfg.ServerIP
	}
	var name []byte
	switch {
	case ans.ServerName != "":
		name = []byte(ans.ServerName)
	case srv == s.cfg.ServerIP && s.serverName != nil:
		name = s.serverName // shared, never written
	default:
		name = []byte(srv.String())
	}
	if len(name) > 255 {
		return fmt.Errorf("dhcpsrv: TFTP server name longer than 255 bytes")
	}
	var vc []byte
	switch {
	case ans.VendorClass == "PXEClient" && !pxe:
	case ans.VendorClass != "":
		vc = []byte(ans.VendorClass)
	case c.HTTPClient:
		vc = []byte("HTTPClient")
	case pxe:
		vc = []byte("PXEClient")
	}
	r.ServerIPAddr = srv.AsSlice()
	r.BootFileName = ans.File
	if vc != nil {
		r.Options[optVendorClass] = vc
	}
	r.Options[optTFTPServer] = name
	r.Options[optBootFile] = []byte(ans.File)
	return nil
}

// route implements RFC 2131 section 4.1 for replies from port 67.
func (s *Server) route(req *dhcpv4.DHCPv4, c Client, typ dhcpv4.MessageType) netip.AddrPort {
	switch {
	case c.Relay != nil:
		return netip.AddrPortFrom(c.Relay.GatewayIP, 67)
	case typ == dhcpv4.MessageTypeNak:
		return broadcast68
	case c.ClientIP.IsValid():
		return netip.AddrPortFrom(c.ClientIP, 68)
	default:
		// The client has no address yet. Unicasting to yiaddr would need
		// an ARP entry (or a raw socket); a broadcast limited to the
		// arrival interface reaches every client, flag or not.
		return broadcast68
	}
}

// finish encodes r, enforces the size limit and builds the event. r is
// recycled: callers must not use it afterwards.
func (s *Server) finish(r *dhcpv4.DHCPv4, c Client, dst netip.AddrPort, file string) (*reply, error) {
	b := encode(r)
	ip, typ := addrOf(r.YourIPAddr), messageType(r)
	// Drop what the message points to (the request's MAC, option values)
	// before it waits in the pool.
	clear(r.Options)
	*r = dhcpv4.DHCPv4{Options: r.Options}
	s.replies.Put(r)
	limit := 576
	if c.MaxMessage > limit {
		limit = c.MaxMessage
	}
	limit -= 28 // option 57 counts the IP and UDP headers
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %d > %d bytes", ErrReplyTooLarge, len(b), limit)
	}
	ev := Event{BootFile: file, Client: c, IP: ip}
	if !ev.IP.IsValid() {
		ev.IP = c.ClientIP
	}
	switch typ {
	case dhcpv4.MessageTypeOffer:
		ev.Type = EventOffer
	case dhcpv4.MessageTypeAck:
		ev.Type = EventAck
	case dhcpv4.MessageTypeNak:
		ev.Type = EventNak
	}
	return &reply{bytes: b, dst: dst, ev: ev}, nil
}

// addNetwork writes the subnet options of full mode.
func (s *Server) addNetwork(r *dhcpv4.DHCPv4, lease time.Duration) {
	opts := s.netOpts
	if lease > 0 {
		opts = s.leaseOpts
		if lease != s.cfg.Subnet.LeaseTime {
			opts = networkOptions(&s.cfg.Subnet, lease)
		}
	}
	for _, o := range opts {
		// Shared, never written: replies only read option values.
		r.Options[o.code] = o.value
	}
}

type optionValue struct {
	code  uint8
	value []byte
}

// networkOptions encodes the subnet options once per server instead of
// once per reply.
func networkOptions(n *Subnet, lease time.Duration) []optionValue {
	o := dhcpv4.Options{}
	o.Update(dhcpv4.OptSubnetMask(net.CIDRMask(n.Prefix.Bits(), 32)))
	if n.Router.IsValid() {
		o.Update(dhcpv4.OptRouter(n.Router.AsSlice()))
	}
	if len(n.DNS) > 0 {
		ips := make([]net.IP, len(n.DNS))
		for i, a := range n.DNS {
			ips[i] = a.AsSlice()
		}
		o.Update(dhcpv4.OptDNS(ips...))
	}
	if n.Domain != "" {
		o.Update(dhcpv4.OptDomainName(n.Domain))
	}
	if lease > 0 {
		o.Update(dhcpv4.OptIPAddressLeaseTime(lease))
		o.Update(dhcpv4.OptRenewTimeValue(lease / 2))
		o.Update(dhcpv4.OptRebindingTimeValue(lease * 7 / 8))
	}
	out := make([]optionValue, 0, len(o))
	for code, v := range o {
		out = append(out, optionValue{code, v})
	}
	return out
}

// encode is dhcpv4.DHCPv4.ToBytes written for replies: the same bytes
// (fixed header, options in code order with 82 last, end, padding to the
// BOOTP minimum of 300), built in one allocation without sorting a key
// slice. TestEncodeMatchesCodec holds it to the codec's output.
func encode(m *dhcpv4.DHCPv4) []byte {
	var present [256 / 64]uint64
	size := 236 + 4 + 1
	for code, v := range m.Options {
		present[code/64] |= 1 << (code % 64)
		size += 2 * max(1, (len(v)+254)/255)
		size += len(v)
	}
	b := make([]byte, 0, max(size, 300))
	b = append(b, byte(m.OpCode), byte(m.HWType), byte(len(m.ClientHWAddr)), m.HopCount)
	b = append(b, m.TransactionID[:]...)
	b = binary.BigEndian.AppendUint16(b, m.NumSeconds)
	b = binary.BigEndian.AppendUint16(b, m.Flags)
	for _, ip := range []net.IP{m.ClientIPAddr, m.YourIPAddr, m.ServerIPAddr, m.GatewayIPAddr} {
		if ip == nil {
			b = append(b, 0, 0, 0, 0)
		} else {
			b = append(b, ip.To4()[:4]...)
		}
	}
	var hw [16]byte
	copy(hw[:], m.ClientHWAddr)
	b = append(b, hw[:]...)
	var sname [64]byte
	copy(sname[:63], m.ServerHostName)
	b = append(b, sname[:]...)
	var file [128]byte
	copy(file[:127], m.BootFileName)
	b = append(b, file[:]...)
	b = append(b, 99, 130, 83, 99) // magic cookie
	put := func(code uint8) {
		v := m.Options[code]
		if len(v) == 0 {
			b = append(b, code, 0)
			return
		}
		for len(v) > 0 {
			n := min(len(v), 255)
			b = append(b, code, byte(n))
			b = append(b, v[:n]...)
			v = v[n:]
		}
	}
	for code := 1; code < 255; code++ {
		if code != 82 && present[code/64]&(1<<(code%64)) != 0 {
			put(uint8(code))
		}
	}
	if present[82/64]&(1<<(82%64)) != 0 {
		put(82)
	}
	b = append(b, 255)
	for len(b) < 300 {
		b = append(b, 0)
	}
	return b
}

// withBoot adds boot information for network-boot clients in full mode; a
// failed decision only costs the boot part, the address is still given.
func (s *Server) withBoot(r *dhcpv4.DHCPv4, c Client) string {
	if !c.Booting() {
		return ""
	}
	ans, err := s.boot.Decide(c)
	if err == nil {
		err = s.addBoot(r, c, ans, false)
	}
	if err != nil {
		s.problems.add(s.now(), reasonBootFailed, c.MAC.String(), fmt.Errorf("boot decision failed (arch %v), address only: %w", c.Arch, err))
		return ""
	}
	return ans.File
}

func (s *Server) discover(ctx context.Context, req *dhcpv4.DHCPv4, c Client) (*reply, error) {
	now := s.now()
	if sh, ok := s.store.(SharedLeaseStore); ok {
		// Another server may have bound this MAC a moment ago, before its
		// record reached this server's view: ask the store, so that every
		// server offers the same address. Without an answer, no offer:
		// no lease could be granted anyway.
		l, ok, err := sh.LookupMAC(ctx, c.MAC)
		if err != nil {
			return nil, fmt.Errorf("dhcpsrv: no offer, binding of %v unknown: %w", c.MAC, err)
		}
		if ok {
			s.pool.apply(l, now)
		}
	}
	var ip netip.Addr
	var host string
	for range 4 {
		var err error
		ip, host, err = s.pool.choose(c.MAC, c.RequestedIP, now)
		if err != nil {
			return nil, err
		}
		if s.cfg.Probe == nil || s.known(c.MAC, ip) {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		inUse, err := s.cfg.Probe(pctx, ip)
		cancel()
		if err != nil {
			s.problems.add(now, reasonProbeFailed, c.MAC.String(), fmt.Errorf("conflict probe of %v: %w", ip, err))
			break
		}
		if !inUse {
			break
		}
		s.log.Warn("dhcp address in use by an unknown host; quarantined", "ip", ip)
		l := s.pool.markConflict(ip, now, s.cfg.Subnet.LeaseTime)
		if err := s.store.Put(ctx, l); err != nil && !errors.Is(err, ErrConflict) {
			return nil, err
		}
		// On ErrConflict another server has bound the address meanwhile
		// (and the host answering is likely its client): choose again
		// all the same; the watch brings the binding into the view.
		ip = netip.Addr{}
	}
	if !ip.IsValid() {
		return nil, ErrPoolExhausted
	}
	r := s.newReply(req, dhcpv4.MessageTypeOffer)
	r.YourIPAddr = ip.AsSlice()
	s.addNetwork(r, s.cfg.Subnet.LeaseTime)
	if host != "" {
		r.Options.Update(dhcpv4.OptHostName(host))
	}
	file := s.withBoot(r, c)
	return s.finish(r, c, s.route(req, c, dhcpv4.MessageTypeOffer), file)
}

// known reports whether ip is already this client's (no probe needed).
func (s *Server) known(mac net.HardwareAddr, ip netip.Addr) bool {
	_, ok := s.pool.owned(mac, ip)
	return ok
}

func (s *Server) nak(req *dhcpv4.DHCPv4, c Client, why string) (*reply, error) {
	r := s.newReply(req, dhcpv4.MessageTypeNak)
	r.ClientIPAddr = net.IPv4zero
	r.Options.Update(dhcpv4.OptMessage(why))
	s.problems.add(s.now(), reasonNak, c.MAC.String(), errors.New(why))
	if c.Relay != nil {
		r.SetBroadcast()
	}
	return s.finish(r, c, s.route(req, c, dhcpv4.MessageTypeNak), "")
}

// request applies decideRequest: one address per MAC.
func (s *Server) request(ctx context.Context, req *dhcpv4.DHCPv4, c Client) (*reply, error) {
	var f requestFacts
	switch {
	case c.ServerID.IsValid():
		f.kind, f.ours = reqSelecting, c.ServerID == s.cfg.ServerIP
		f.ip = c.RequestedIP
		if !f.ip.IsValid() {
			f.ip = c.ClientIP
		}
	case c.RequestedIP.IsValid():
		f.kind, f.ip = reqInitReboot, c.RequestedIP
	case c.ClientIP.IsValid():
		f.kind, f.ip = reqRenewing, c.ClientIP
	default:
		return nil, nil
	}
	f.inSubnet = s.cfg.Subnet.Prefix.Contains(f.ip)
	now := s.now()
	host, v, why := s.pool.admit(c.MAC, f, now)
	switch v {
	case verdictIgnore:
		if f.kind == reqSelecting && !f.ours {
			s.pool.dropOffer(c.MAC) // the client took another server's offer
		}
		return nil, nil
	case verdictNak:
		return s.nak(req, c, why)
	}
	ip := f.ip
	lt := s.cfg.Subnet.LeaseTime
	if host == "" {
		host = clientHostname(c.Hostname)
	}
	l := &Lease{IP: ip, MAC: c.MAC, Hostname: host, Expiry: now.Add(lt), State: LeaseBound}
	r := s.newReply(req, dhcpv4.MessageTypeAck)
	r.YourIPAddr = ip.AsSlice()
	s.addNetwork(r, lt)
	if h := s.reservedHost(c.MAC); h != "" {
		r.Options.Update(dhcpv4.OptHostName(h))
	}
	file := s.withBoot(r, c)
	out, err := s.finish(r, c, s.route(req, c, dhcpv4.MessageTypeAck), file)
	if err != nil {
		// Nothing was stored yet; the hold placed by admit expires.
		return nil, err
	}
	out.lease, out.failed = l, "dhcpsrv: lease not stored, no ACK sent"
	if _, shared := s.store.(SharedLeaseStore); shared {
		// Only a shared store checks one address per MAC itself; it is
		// answered through handle, which stores prior.
		if old, ok := s.pool.boundLease(c.MAC, now); ok && old.IP != ip {
			old.State, old.Expiry = LeaseReleased, now
			out.prior = &old
		}
	}
	out.commit = func() { s.pool.commit(*l) }
	out.fallback = func(err error) *reply {
		if errors.Is(err, ErrConflict) {
			// Another server's record won: the client starts over, and
			// its DISCOVER is offered what the store says.
			alt, _ := s.nak(req, c, "address not available")
			return alt
		}
		if errors.Is(err, ErrStoreUnavailable) {
			return s.cachedAck(req, c, ip)
		}
		return nil
	}
	return out, nil
}

// cachedAck answers a REQUEST for ip from the view alone, for the time the
// lease the view holds for the client has left: a renewal while the store
// is unreachable. Nothing new is promised, since that lease was stored when
// it was granted. nil when the view holds no such lease.
func (s *Server) cachedAck(req *dhcpv4.DHCPv4, c Client, ip netip.Addr) *reply {
	l, ok := s.pool.owned(c.MAC, ip)
	now := s.now()
	left := l.Expiry.Sub(now).Truncate(time.Second)
	if !ok || left < time.Second {
		return nil
	}
	r := s.newReply(req, dhcpv4.MessageTypeAck)
	r.YourIPAddr = ip.AsSlice()
	s.addNetwork(r, left)
	if h := s.reservedHost(c.MAC); h != "" {
		r.Options.Update(dhcpv4.OptHostName(h))
	}
	file := s.withBoot(r, c)
	out, err := s.finish(r, c, s.route(req, c, dhcpv4.MessageTypeAck), file)
	if err != nil {
		return nil
	}
	return out
}

func (s *Server) reservedHost(mac net.HardwareAddr) string {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return s.pool.resByMAC[string(mac)].Hostname
}

// decline and release answer nothing; the returned reply only carries the
// lease to store (nil when there is nothing to do).
func (s *Server) decline(c Client) *reply {
	if c.ServerID.IsValid() && c.ServerID != s.cfg.ServerIP {
		return nil
	}
	if _, ok := s.pool.owned(c.MAC, c.RequestedIP); !ok {
		return nil
	}
	// The client saw the address in use: quarantine it (RFC 2131 4.3.3).
	// The record keeps the MAC, so a shared store can tell the owner's
	// decline from another server's attempt to take the address.
	l := &Lease{IP: c.RequestedIP, MAC: c.MAC, State: LeaseDeclined, Expiry: s.now().Add(s.cfg.Subnet.LeaseTime)}
	return &reply{lease: l, failed: "dhcpsrv: declined address not stored", commit: func() {
		s.pool.commit(*l)
		s.pool.mu.Lock()
		delete(s.pool.byMAC, string(c.MAC))
		s.pool.mu.Unlock()
	}}
}

func (s *Server) release(c Client) *reply {
	if c.ServerID.IsValid() && c.ServerID != s.cfg.ServerIP {
		return nil
	}
	l, ok := s.pool.owned(c.MAC, c.ClientIP)
	if !ok {
		return nil
	}
	l.State, l.Expiry = LeaseReleased, s.now()
	return &reply{lease: &l, failed: "dhcpsrv: release not stored", commit: func() { s.pool.commit(l) }}
}

func (s *Server) inform(req *dhcpv4.DHCPv4, c Client) (*reply, error) {
	r := s.newReply(req, dhcpv4.MessageTypeAck)
	s.addNetwork(r, 0) // RFC 2131 3.4: no lease time in an INFORM answer
	file := s.withBoot(r, c)
	dst := s.route(req, c, dhcpv4.MessageTypeAck)
	return s.finish(r, c, dst, file)
}
