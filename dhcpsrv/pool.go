package dhcpsrv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Subnet is the address plan of full mode.
type Subnet struct {
	// Prefix is the subnet, e.g. 10.77.0.0/24; it gives option 1. Required.
	Prefix netip.Prefix
	// First and Last bound the dynamic range (inclusive). Required.
	First, Last netip.Addr
	// Router is option 3; zero means none (the Debian installer then stops
	// and asks whether to continue without a default route).
	Router netip.Addr
	// DNS is option 6. The Debian installer stops before fetching its
	// preseed when it gets none, so set it whenever installers run here.
	DNS []netip.Addr
	// Domain is option 15; empty means none.
	Domain string
	// LeaseTime is option 51. Default 1 hour.
	LeaseTime time.Duration
	// Reservations pin addresses (and host names) to MACs; they may lie
	// inside or outside the range but must be inside Prefix.
	Reservations []Reservation
}

// Reservation is a fixed address for one machine.
type Reservation struct {
	MAC      net.HardwareAddr
	IP       netip.Addr
	Hostname string // option 12; empty means none
}

// ParsePool parses "FIRST-LAST" (the -pool flag) into two IPv4 addresses.
func ParsePool(s string) (first, last netip.Addr, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return first, last, fmt.Errorf("dhcpsrv: pool %q: want FIRST-LAST", s)
	}
	if first, err = netip.ParseAddr(strings.TrimSpace(a)); err != nil || !first.Is4() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("dhcpsrv: pool %q: bad first address", s)
	}
	if last, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil || !last.Is4() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("dhcpsrv: pool %q: bad last address", s)
	}
	if last.Less(first) {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("dhcpsrv: pool %q: last address before first", s)
	}
	return first, last, nil
}

// InterfaceAddr returns the first IPv4 address of the named interface with
// its prefix, e.g. 10.77.0.1/24: the default server address and subnet.
func InterfaceAddr(name string) (netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("dhcpsrv: interface %q: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("dhcpsrv: interface %q: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip4 := n.IP.To4(); ip4 != nil {
				ones, _ := n.Mask.Size()
				return netip.PrefixFrom(netip.AddrFrom4([4]byte(ip4)), ones), nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("dhcpsrv: interface %q has no IPv4 address", name)
}

// SubnetFromInterface builds a Subnet for pool ("FIRST-LAST") on the
// interface's own network, with the interface address as router and DNS
// server (as dnsmasq does): what the -pool flag means. The Debian installer
// stops at "no default route" without option 3 and at "name server
// addresses" without option 6, even on an isolated install network. Adjust
// the result (Router, DNS, Domain) as needed.
func SubnetFromInterface(iface, pool string) (Subnet, error) {
	p, err := InterfaceAddr(iface)
	if err != nil {
		return Subnet{}, err
	}
	first, last, err := ParsePool(pool)
	if err != nil {
		return Subnet{}, err
	}
	return Subnet{Prefix: p.Masked(), First: first, Last: last, Router: p.Addr(), DNS: []netip.Addr{p.Addr()}}, nil
}

func (n *Subnet) validate() error {
	if !n.Prefix.IsValid() || !n.Prefix.Addr().Is4() {
		return errors.New("dhcpsrv: full mode needs Subnet.Prefix (IPv4)")
	}
	n.Prefix = n.Prefix.Masked()
	if !n.First.Is4() || !n.Last.Is4() || n.Last.Less(n.First) {
		return fmt.Errorf("dhcpsrv: bad range %v-%v", n.First, n.Last)
	}
	if !n.Prefix.Contains(n.First) || !n.Prefix.Contains(n.Last) {
		return fmt.Errorf("dhcpsrv: range %v-%v is not inside %v", n.First, n.Last, n.Prefix)
	}
	if n.LeaseTime <= 0 {
		n.LeaseTime = time.Hour
	}
	if n.LeaseTime < time.Minute {
		return fmt.Errorf("dhcpsrv: lease time %v is below one minute", n.LeaseTime)
	}
	for _, r := range n.Reservations {
		if len(r.MAC) != 6 || !n.Prefix.Contains(r.IP) {
			return fmt.Errorf("dhcpsrv: reservation %v -> %v is not an Ethernet MAC in %v", r.MAC, r.IP, n.Prefix)
		}
	}
	return nil
}

// offerHold is how long an offered address stays set aside for the client.
// OVMF waits about 4 s before its REQUEST; a minute leaves room for slow
// firmware without starving the pool.
const offerHold = time.Minute

type poolEntry struct {
	lease      Lease // zero IP: never leased
	holdMAC    string
	holdExpiry time.Time
}

// pool is the in-memory allocator of full mode; the LeaseStore is its
// durable copy.
//
// A MAC holds at most one address at a time besides its reservation: one
// bound lease (byMAC) or one pending offer (offers), never several. Without
// that, every retransmitted DISCOVER would set a new address aside for a
// minute and every REQUEST for another address would bind it for a lease
// time, so one client could drain the pool.
type pool struct {
	net      Subnet
	first    uint32
	size     uint32
	mu       sync.Mutex
	byIP     map[netip.Addr]*poolEntry
	byMAC    map[string]netip.Addr
	resByMAC map[string]Reservation
	resByIP  map[netip.Addr]string
	// offers maps a MAC to the address held for it (see hold). Every entry
	// k -> ip has byIP[ip].holdMAC == k, so the map never outgrows byIP,
	// which is bounded by the subnet.
	offers map[string]netip.Addr
	cursor uint32
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
func addrU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func newPool(n Subnet, leases []Lease) *pool {
	p := &pool{net: n, first: u32(n.First), size: u32(n.Last) - u32(n.First) + 1,
		byIP: map[netip.Addr]*poolEntry{}, byMAC: map[string]netip.Addr{}, offers: map[string]netip.Addr{},
		resByMAC: map[string]Reservation{}, resByIP: map[netip.Addr]string{}}
	for _, r := range n.Reservations {
		p.resByMAC[string(r.MAC)] = r
		p.resByIP[r.IP] = string(r.MAC)
	}
	for _, l := range leases {
		if !n.Prefix.Contains(l.IP) {
			continue
		}
		p.byIP[l.IP] = &poolEntry{lease: l}
		if len(l.MAC) > 0 && l.State != LeaseDeclined {
			p.byMAC[string(l.MAC)] = l.IP
		}
	}
	return p
}

func (p *pool) inRange(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	v := u32(ip)
	return v >= p.first && v-p.first < p.size
}

// usableBy reports whether mac may have ip now. Caller holds p.mu.
func (p *pool) usableBy(ip netip.Addr, mac string, now time.Time) bool {
	if owner, ok := p.resByIP[ip]; ok {
		return owner == mac
	}
	if !p.inRange(ip) {
		return false
	}
	e := p.byIP[ip]
	if e == nil {
		return true
	}
	if e.holdMAC != "" && e.holdMAC != mac && now.Before(e.holdExpiry) {
		return false
	}
	l := e.lease
	switch {
	case !l.IP.IsValid():
		return true
	case l.State == LeaseDeclined:
		return !now.Before(l.Expiry)
	case string(l.MAC) == mac:
		return true
	default:
		return l.State == LeaseReleased || !now.Before(l.Expiry)
	}
}

// choose picks the address to offer: reservation, the client's current or
// previous address, the address already offered to it (a retransmitted
// DISCOVER gets the same answer), the requested one, then the next free one.
// It holds the choice for offerHold, which releases any other address held
// for the MAC.
func (p *pool) choose(mac net.HardwareAddr, requested netip.Addr, now time.Time) (netip.Addr, string, error) {
	k := string(mac)
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.resByMAC[k]; ok {
		return r.IP, r.Hostname, nil
	}
	ip, ok := p.byMAC[k]
	if !(ok && p.usableBy(ip, k, now)) {
		ip, ok = p.offered(k, now)
	}
	if !ok {
		ip, ok = requested, requested.IsValid() && p.usableBy(requested, k, now)
	}
	if !ok {
		ip, ok = p.nextFree(k, now)
	}
	if !ok {
		return netip.Addr{}, "", ErrPoolExhausted
	}
	p.hold(ip, k, now)
	return ip, "", nil
}

// offered returns the address held for MAC k by a pending offer, if the
// hold still runs and the address is still usable by k. Caller holds p.mu.
func (p *pool) offered(k string, now time.Time) (netip.Addr, bool) {
	ip, ok := p.offers[k]
	if !ok {
		return netip.Addr{}, false
	}
	e := p.byIP[ip]
	if e == nil || e.holdMAC != k || !now.Before(e.holdExpiry) || !p.usableBy(ip, k, now) {
		return netip.Addr{}, false
	}
	return ip, true
}

// bound returns the unexpired bound lease of MAC k. Caller holds p.mu.
func (p *pool) bound(k string, now time.Time) (netip.Addr, bool) {
	ip, ok := p.byMAC[k]
	if !ok {
		return netip.Addr{}, false
	}
	e := p.byIP[ip]
	if e == nil || string(e.lease.MAC) != k || e.lease.State != LeaseBound || !now.Before(e.lease.Expiry) {
		return netip.Addr{}, false
	}
	return ip, true
}

// boundLease returns the unexpired bound lease of mac, if it has one.
func (p *pool) boundLease(mac net.HardwareAddr, now time.Time) (Lease, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip, ok := p.bound(string(mac), now)
	if !ok {
		return Lease{}, false
	}
	return p.byIP[ip].lease, true
}

// held is the one address the server associates with MAC k: its
// reservation, else its bound lease, else its pending offer; the zero Addr
// when there is none. Caller holds p.mu.
func (p *pool) held(k string, now time.Time) netip.Addr {
	if r, ok := p.resByMAC[k]; ok {
		return r.IP
	}
	if ip, ok := p.bound(k, now); ok {
		return ip
	}
	ip, _ := p.offered(k, now)
	return ip
}

// nextFree scans from a rotating cursor, so addresses are reused as late as
// possible and a returning client usually still finds its old one.
func (p *pool) nextFree(k string, now time.Time) (netip.Addr, bool) {
	for i := uint32(0); i < p.size; i++ {
		c := (p.cursor + i) % p.size
		ip := addrU32(p.first + c)
		if p.usableBy(ip, k, now) {
			p.cursor = (c + 1) % p.size
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// hold sets ip aside for MAC k for offerHold and releases whatever else
// was held for k: one pending offer per MAC. Caller holds p.mu.
func (p *pool) hold(ip netip.Addr, k string, now time.Time) {
	if old, ok := p.offers[k]; ok && old != ip {
		p.unhold(old, k)
	}
	e := p.byIP[ip]
	if e == nil {
		e = &poolEntry{}
		p.byIP[ip] = e
	}
	if e.holdMAC != "" && e.holdMAC != k {
		// An expired hold of another MAC (usableBy let k have ip).
		p.unhold(ip, e.holdMAC)
	}
	e.holdMAC, e.holdExpiry = k, now.Add(offerHold)
	p.offers[k] = ip
}

// unhold drops the hold of MAC k on ip, if k holds it. Caller holds p.mu.
func (p *pool) unhold(ip netip.Addr, k string) {
	if e := p.byIP[ip]; e != nil && e.holdMAC == k {
		e.holdMAC, e.holdExpiry = "", time.Time{}
	}
	if p.offers[k] == ip {
		delete(p.offers, k)
	}
}

// dropOffer releases the pending offer of mac, e.g. when its REQUEST shows
// it chose another server. A bound lease is not touched.
func (p *pool) dropOffer(mac net.HardwareAddr) {
	k := string(mac)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ip, ok := p.offers[k]; ok {
		p.unhold(ip, k)
	}
}

// markConflict quarantines an address a conflict probe found in use.
func (p *pool) markConflict(ip netip.Addr, now time.Time, d time.Duration) Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := Lease{IP: ip, State: LeaseDeclined, Expiry: now.Add(d)}
	if e := p.byIP[ip]; e != nil && e.holdMAC != "" {
		p.unhold(ip, e.holdMAC)
	}
	p.byIP[ip] = &poolEntry{lease: l}
	return l
}

// admit decides a REQUEST (see decideRequest) against the pool state and,
// when it is to be ACKed, holds f.ip for mac while the lease is written; the
// caller commits after the store succeeded. It returns the reserved host
// name of mac, if any.
func (p *pool) admit(mac net.HardwareAddr, f requestFacts, now time.Time) (host string, v verdict, why string) {
	k := string(mac)
	p.mu.Lock()
	defer p.mu.Unlock()
	f.held = p.held(k, now)
	f.free = f.ip.IsValid() && p.usableBy(f.ip, k, now)
	if v, why = decideRequest(f); v != verdictAck {
		return "", v, why
	}
	p.hold(f.ip, k, now)
	return p.resByMAC[k].Hostname, verdictAck, ""
}

func (p *pool) commit(l Lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byIP[l.IP]
	if e == nil {
		e = &poolEntry{}
		p.byIP[l.IP] = e
	}
	if e.holdMAC != "" {
		p.unhold(l.IP, e.holdMAC)
	}
	e.lease = l
	if len(l.MAC) > 0 {
		if l.State == LeaseDeclined {
			delete(p.byMAC, string(l.MAC))
		} else {
			p.byMAC[string(l.MAC)] = l.IP
		}
	}
}

// apply takes a record written by another server (or echoed back by a
// shared store) into the view. Unlike commit, it keeps this server's offer
// of the address unless the record takes the address from the client the
// offer was for.
func (p *pool) apply(l Lease, now time.Time) {
	if !p.net.Prefix.Contains(l.IP) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byIP[l.IP]
	if e == nil {
		e = &poolEntry{}
		p.byIP[l.IP] = e
	}
	if e.holdMAC != "" && e.holdMAC != string(l.MAC) && (l.active(now) || l.State == LeaseDeclined) {
		p.unhold(l.IP, e.holdMAC)
	}
	e.lease = l
	if len(l.MAC) == 0 {
		return
	}
	k := string(l.MAC)
	switch {
	case l.State == LeaseDeclined:
		if p.byMAC[k] == l.IP {
			delete(p.byMAC, k)
		}
	case l.State == LeaseBound:
		p.byMAC[k] = l.IP
		if ip, ok := p.offers[k]; ok && ip != l.IP {
			p.unhold(ip, k) // bound elsewhere: the offer is void
		}
	default:
		if _, ok := p.byMAC[k]; !ok {
			p.byMAC[k] = l.IP
		}
	}
}

// owned returns the lease of ip if mac holds it.
func (p *pool) owned(mac net.HardwareAddr, ip netip.Addr) (Lease, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.byIP[ip]
	if e == nil || string(e.lease.MAC) != string(mac) || e.lease.State != LeaseBound {
		return Lease{}, false
	}
	return e.lease, true
}

func (p *pool) snapshot() []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Lease, 0, len(p.byIP))
	for _, e := range p.byIP {
		if e.lease.IP.IsValid() {
			out = append(out, e.lease)
		}
	}
	return out
}

// ErrPoolExhausted reports that no address of the range is free.
var ErrPoolExhausted = errors.New("dhcpsrv: address pool exhausted")
