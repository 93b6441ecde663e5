package dhcpsrv

import (
	"bytes"
	"container/list"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Bindings remembers which MAC address stands behind an IP address, so that
// TFTP and HTTP requests, which carry only an address, can be routed per
// host. DHCP is the authority (Observe, Bind); for addresses DHCP did not
// bind, as in proxy mode, the kernel's neighbour table is the fallback: a
// client that has just sent a TFTP or HTTP request has been resolved by the
// kernel. The zero value is ready to use, and a Bindings is safe for
// concurrent use. It must not be copied after first use.
//
// In proxy mode the addresses are what clients claim in their own requests:
// a binding tells which host a request probably comes from, not who may
// have it.
type Bindings struct {
	// Neighbors returns the kernel's IPv4 neighbour table in the format of
	// /proc/net/arp. It is called only for addresses DHCP did not bind, at
	// most once per second; lookups in between use the table it returned
	// last. Default: read /proc/net/arp.
	Neighbors func() ([]byte, error)
	// Max is the number of DHCP bindings kept; the least recently bound is
	// dropped first, so memory stays bounded whatever the network sends.
	// The neighbour cache holds at most Max entries too. Default 65536.
	Max int

	mu    sync.Mutex
	byIP  map[netip.Addr]*list.Element // of *binding
	byMAC map[string]*list.Element
	lru   list.List // front: most recently bound

	// The neighbour cache has its own lock so that a slow read does not
	// hold up lookups of bound addresses and Observe.
	nmu     sync.Mutex
	neigh   map[netip.Addr]net.HardwareAddr
	readAt  time.Time
	didRead bool
	now     func() time.Time // replaced in tests
}

type binding struct {
	ip  netip.Addr
	mac string // net.HardwareAddr as a string of bytes
}

const (
	defaultMaxBindings = 65536
	// neighbourInterval is how often the neighbour table may be read.
	neighbourInterval = time.Second
	// maxNeighbourBytes bounds the read of /proc/net/arp (the kernel keeps
	// a few thousand entries of about 80 bytes at most by default).
	maxNeighbourBytes = 8 << 20
)

func (b *Bindings) max() int {
	if b.Max > 0 {
		return b.Max
	}
	return defaultMaxBindings
}

// Observe binds the client of ev to its address, taking only what this
// server can vouch for. When it hands out addresses, that is its own ACK:
// an OFFER may be declined, and a REQUEST may be meant for another server
// on the segment (which may give the address to someone else), so
// trusting either would serve one machine another's menu. Under proxyDHCP
// (Client.Proxy) the address comes from another server, so the client's
// own word is the best there is: the address it asks for (option 50) or
// holds (ciaddr) in a REQUEST or INFORM, or holds in a DISCOVER. NAKs,
// DECLINEs and RELEASEs bind nothing. Observe can be used directly as
// Config.OnEvent.
func (b *Bindings) Observe(ev Event) {
	var ip netip.Addr
	switch {
	case ev.Type == EventAck && !ev.Client.Proxy:
		ip = ev.IP
	case !ev.Client.Proxy:
		return
	case ev.Type == EventRequest, ev.Type == EventInform:
		ip = ev.Client.RequestedIP
		if !usableIP(ip) {
			ip = ev.Client.ClientIP
		}
	case ev.Type == EventDiscover:
		// Option 50 in a DISCOVER is only a wish.
		ip = ev.Client.ClientIP
	default:
		return
	}
	b.Bind(ev.Client.MAC, ip)
}

// Bind records that mac uses ip, replacing any earlier address of mac and
// any earlier MAC of ip. An empty or all-zero mac, an invalid or
// unspecified ip are ignored.
func (b *Bindings) Bind(mac net.HardwareAddr, ip netip.Addr) {
	if !usableMAC(mac) || !usableIP(ip) {
		return
	}
	ip = ip.Unmap()
	k := string(mac)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byIP == nil {
		b.byIP = make(map[netip.Addr]*list.Element)
		b.byMAC = make(map[string]*list.Element)
	}
	if e, ok := b.byMAC[k]; ok {
		b.remove(e)
	}
	if e, ok := b.byIP[ip]; ok {
		b.remove(e)
	}
	e := b.lru.PushFront(&binding{ip: ip, mac: k})
	b.byIP[ip], b.byMAC[k] = e, e
	for b.lru.Len() > b.max() {
		b.remove(b.lru.Back())
	}
}

// remove drops one binding. Caller holds b.mu.
func (b *Bindings) remove(e *list.Element) {
	v := b.lru.Remove(e).(*binding)
	delete(b.byIP, v.ip)
	delete(b.byMAC, v.mac)
}

// MAC returns the MAC address behind ip: the one DHCP bound, else the one
// in the neighbour table as last read (at most once per second). The
// result is a copy.
func (b *Bindings) MAC(ip netip.Addr) (net.HardwareAddr, bool) {
	if !usableIP(ip) {
		return nil, false
	}
	ip = ip.Unmap()
	b.mu.Lock()
	e, ok := b.byIP[ip]
	var mac net.HardwareAddr
	if ok {
		mac = net.HardwareAddr(e.Value.(*binding).mac)
	}
	b.mu.Unlock()
	if ok {
		return mac, true
	}
	return b.neighbour(ip)
}

// IP returns the address DHCP last bound to mac (the neighbour table is not
// searched: one MAC may stand behind several of its entries).
func (b *Bindings) IP(mac net.HardwareAddr) (netip.Addr, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.byMAC[string(mac)]; ok {
		return e.Value.(*binding).ip, true
	}
	return netip.Addr{}, false
}

// neighbour looks ip up in the cached neighbour table, reading it again
// when the copy is older than neighbourInterval.
func (b *Bindings) neighbour(ip netip.Addr) (net.HardwareAddr, bool) {
	b.nmu.Lock()
	defer b.nmu.Unlock()
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	if !b.didRead || now.Sub(b.readAt) >= neighbourInterval || now.Before(b.readAt) {
		b.didRead, b.readAt = true, now
		read := b.Neighbors
		if read == nil {
			read = readProcARP
		}
		b.neigh = nil
		if data, err := read(); err == nil {
			b.neigh = parseNeighbors(data, b.max())
		}
	}
	mac, ok := b.neigh[ip]
	if !ok {
		return nil, false
	}
	return bytes.Clone(mac), true
}

func readProcARP() ([]byte, error) {
	f, err := os.Open("/proc/net/arp")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxNeighbourBytes))
}

// parseNeighbors reads a table in the format of /proc/net/arp: a header
// line, then "IP HWtype Flags HWaddress Mask Device" per entry. Incomplete
// entries (all-zero address) and lines that do not parse are skipped; at
// most max entries are kept.
func parseNeighbors(data []byte, max int) map[netip.Addr]net.HardwareAddr {
	out := make(map[netip.Addr]net.HardwareAddr)
	for len(data) > 0 && len(out) < max {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) < 4 {
			continue
		}
		ip, err := netip.ParseAddr(string(f[0]))
		if err != nil || !usableIP(ip) {
			continue
		}
		mac, err := net.ParseMAC(string(f[3]))
		if err != nil || !usableMAC(mac) {
			continue
		}
		out[ip.Unmap()] = mac
	}
	return out
}

func usableIP(ip netip.Addr) bool { return ip.IsValid() && !ip.IsUnspecified() }

// usableMAC rejects the empty and all-zero addresses (an incomplete
// neighbour entry, or a client that sent no chaddr) and anything longer
// than the 16-byte chaddr field.
func usableMAC(mac net.HardwareAddr) bool {
	if len(mac) == 0 || len(mac) > 16 {
		return false
	}
	for _, c := range mac {
		if c != 0 {
			return true
		}
	}
	return false
}
