package etcdstore_test

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/dhcpsrv/etcdstore"
	"github.com/pxekit/pxekit/internal/etcdtest"
	"github.com/pxekit/pxekit/internal/simclient"
	"github.com/pxekit/pxekit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var nClients = flag.Int("etcd-clients", 200, "simulated clients of TestTwoServersOneEtcd")

// segment is one Ethernet segment made for a test: a bridge in a namespace
// of its own, with two servers and a relay agent (the load generator), each
// in its namespace on a veth port of the bridge.
type segment struct {
	brNS             string
	srvNS, srvIf     [2]string
	relayNS, relayIf string
}

const (
	relayIP = "10.231.5.3"
	subnet  = "10.231.5.0/24"
)

var serverIPs = [2]string{"10.231.5.1", "10.231.5.2"}

func newSegment(t *testing.T) *segment {
	t.Helper()
	testutil.RequireNetns(t)
	id := fmt.Sprint(os.Getpid() % 100000)
	g := &segment{brNS: "etcdst-" + id + "-br", relayNS: "etcdst-" + id + "-r", relayIf: "es" + id + "r"}
	br := testutil.NewSegment(t, g.brNS)
	for i := range 2 {
		g.srvNS[i], g.srvIf[i] = fmt.Sprintf("etcdst-%s-s%d", id, i), fmt.Sprintf("es%ss%d", id, i)
		br.Port(g.srvNS[i], g.srvIf[i], serverIPs[i]+"/24")
	}
	br.Port(g.relayNS, g.relayIf, relayIP+"/24")
	return g
}

// startServer runs a full-mode server in namespace i of g on the shared
// etcd prefix.
func startServer(t *testing.T, g *segment, i int, e *etcdtest.Etcd) *dhcpsrv.Server {
	t.Helper()
	c := e.Client()
	t.Cleanup(func() { c.Close() })
	st, err := etcdstore.New(t.Context(), etcdstore.Config{Client: c, Prefix: "twoservers", Timeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cfg := dhcpsrv.Config{
		Interface: g.srvIf[i], Mode: dhcpsrv.ModeFull, ServerIP: netip.MustParseAddr(serverIPs[i]), Leases: st,
		Subnet: dhcpsrv.Subnet{Prefix: netip.MustParsePrefix(subnet), First: netip.MustParseAddr("10.231.5.10"),
			Last: netip.MustParseAddr("10.231.5.250"), LeaseTime: 10 * time.Minute},
	}
	var s *dhcpsrv.Server
	require.NoError(t, simclient.InNetns(g.srvNS[i], func() error {
		var err error
		if s, err = dhcpsrv.New(cfg); err != nil {
			return err
		}
		return s.Listen()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Shutdown(context.Background())
	})
	return s
}

// relay is the load generator: a relay agent that forwards every client
// message to both servers, as a relay with two helper addresses does, and
// hands the answers to the waiting exchange by transaction ID.
type relay struct {
	c       *net.UDPConn
	mu      sync.Mutex
	waiting map[uint32]chan *dhcpv4.DHCPv4
	xid     uint32
	// Counts of DORA rounds started over, for the log.
	noOffer, nak, noAnswer int
}

func (r *relay) count(p *int) { r.mu.Lock(); *p++; r.mu.Unlock() }

func (r *relay) stats() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("rounds started over: %d without offer, %d NAKed, %d unanswered", r.noOffer, r.nak, r.noAnswer)
}

func newRelay(t *testing.T, g *segment) *relay {
	r := &relay{waiting: map[uint32]chan *dhcpv4.DHCPv4{}}
	require.NoError(t, simclient.InNetns(g.relayNS, func() error {
		var err error
		r.c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(relayIP), Port: 67})
		return err
	}))
	t.Cleanup(func() { r.c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := r.c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			r.mu.Lock()
			ch := r.waiting[binary.BigEndian.Uint32(m.TransactionID[:])]
			r.mu.Unlock()
			if ch != nil {
				select {
				case ch <- m:
				default:
				}
			}
		}
	}()
	return r
}

func (r *relay) msg(mac net.HardwareAddr, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, ClientHWAddr: mac, HopCount: 1,
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero,
		GatewayIPAddr: net.ParseIP(relayIP).To4(), Options: dhcpv4.Options{}}
	r.mu.Lock()
	r.xid++
	binary.BigEndian.PutUint32(m.TransactionID[:], r.xid)
	r.mu.Unlock()
	m.Options.Update(dhcpv4.OptMessageType(typ))
	m.Options[55] = []byte{1, 3, 6, 51, 54}
	return m
}

// exchange sends m to both servers and collects the answers of the wanted
// types for wait, or until both servers have answered.
func (r *relay) exchange(m *dhcpv4.DHCPv4, wait time.Duration, want ...dhcpv4.MessageType) []*dhcpv4.DHCPv4 {
	return r.collect(m, wait, len(serverIPs), want)
}

// first returns the first answer within wait (nil if none), not waiting
// for the second server.
func (r *relay) first(m *dhcpv4.DHCPv4, wait time.Duration, want ...dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	if out := r.collect(m, wait, 1, want); len(out) > 0 {
		return out[0]
	}
	return nil
}

// collect sends m to both servers and gathers the answers of the wanted
// types until it has n of them or wait has passed.
func (r *relay) collect(m *dhcpv4.DHCPv4, wait time.Duration, n int, want []dhcpv4.MessageType) []*dhcpv4.DHCPv4 {
	xid := binary.BigEndian.Uint32(m.TransactionID[:])
	ch := make(chan *dhcpv4.DHCPv4, 8)
	r.mu.Lock()
	r.waiting[xid] = ch
	r.mu.Unlock()
	defer func() { r.mu.Lock(); delete(r.waiting, xid); r.mu.Unlock() }()
	b := m.ToBytes()
	for _, ip := range serverIPs {
		r.c.WriteToUDP(b, &net.UDPAddr{IP: net.ParseIP(ip), Port: 67})
	}
	var out []*dhcpv4.DHCPv4
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case a := <-ch:
			if slices.Contains(want, a.MessageType()) {
				out = append(out, a)
			}
			if len(out) >= n {
				return out
			}
		case <-t.C:
			return out
		}
	}
}

// dora runs DISCOVER-OFFER-REQUEST-ACK for mac until ctx ends, starting
// over after a NAK or silence, and returns the address ACKed.
func (r *relay) dora(ctx context.Context, mac net.HardwareAddr) (netip.Addr, error) {
	for ctx.Err() == nil {
		offer := r.first(r.msg(mac, dhcpv4.MessageTypeDiscover), time.Second, dhcpv4.MessageTypeOffer)
		if offer == nil {
			r.count(&r.noOffer)
			continue
		}
		req := r.msg(mac, dhcpv4.MessageTypeRequest)
		req.Options.Update(dhcpv4.OptServerIdentifier(offer.ServerIdentifier()))
		req.Options.Update(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))
		a := r.first(req, time.Second, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
		switch {
		case a == nil:
			r.count(&r.noAnswer)
		case a.MessageType() == dhcpv4.MessageTypeAck:
			ip, _ := netip.AddrFromSlice(a.YourIPAddr.To4())
			return ip, nil
		default:
			r.count(&r.nak)
		}
	}
	return netip.Addr{}, ctx.Err()
}

// renew sends a RENEWING request (ciaddr, no option 50 or 54) and returns
// the ACK, if one came within wait.
func (r *relay) renew(mac net.HardwareAddr, ip netip.Addr, wait time.Duration) *dhcpv4.DHCPv4 {
	req := r.msg(mac, dhcpv4.MessageTypeRequest)
	req.ClientIPAddr = ip.AsSlice()
	return r.first(req, wait, dhcpv4.MessageTypeAck)
}

func clientMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xe7, 0, 0, byte(i >> 8), byte(i)}
}

// doraAll runs dora for the MACs with 16 clients at a time.
func doraAll(ctx context.Context, r *relay, macs []net.HardwareAddr) (map[string]netip.Addr, error) {
	var mu sync.Mutex
	got := map[string]netip.Addr{}
	var firstErr error
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, mac := range macs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ip, err := r.dora(ctx, mac)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%v: %w", mac, err)
				}
				return
			}
			got[mac.String()] = ip
		}()
	}
	wg.Wait()
	return got, firstErr
}

// assertOneToOne checks the table in etcd: every MAC holds exactly one
// unexpired bound address, no address is bound to two MACs, and the ACKs
// the clients saw agree.
func assertOneToOne(t *testing.T, e *etcdtest.Etcd, acked map[string]netip.Addr) {
	t.Helper()
	c := e.Client()
	defer c.Close()
	st, err := etcdstore.New(t.Context(), etcdstore.Config{Client: c, Prefix: "twoservers"})
	require.NoError(t, err)
	defer st.Close()
	ls, err := st.Load(t.Context())
	require.NoError(t, err)
	now := time.Now()
	byMAC := map[string][]netip.Addr{}
	byIP := map[netip.Addr]int{}
	for _, l := range ls {
		if l.State == dhcpsrv.LeaseBound && now.Before(l.Expiry) {
			byMAC[l.MAC.String()] = append(byMAC[l.MAC.String()], l.IP)
			byIP[l.IP]++
		}
	}
	for ip, n := range byIP {
		assert.Equal(t, 1, n, "records of %v", ip) // one key per address: never more
	}
	for mac, ip := range acked {
		assert.Equal(t, []netip.Addr{ip}, byMAC[mac], "bound addresses of %v", mac)
	}
	assert.Len(t, byMAC, len(acked), "bound MACs")
	seen := map[netip.Addr]string{}
	for mac, ip := range acked {
		if other, dup := seen[ip]; dup {
			t.Errorf("%v ACKed to %v and %v", ip, other, mac)
		}
		seen[ip] = mac
	}
}

func TestTwoServersOneEtcd(t *testing.T) {
	g := newSegment(t)
	e := etcdtest.Start(t)
	srv := [2]*dhcpsrv.Server{startServer(t, g, 0, e), startServer(t, g, 1, e)}
	r := newRelay(t, g)

	n := *nClients
	macs := make([]net.HardwareAddr, n)
	for i := range macs {
		macs[i] = clientMAC(i)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	acked, err := doraAll(ctx, r, macs)
	require.NoError(t, err)
	t.Logf("%d DORAs through two servers in %v; %s", n, time.Since(t0).Round(time.Millisecond), r.stats())
	require.Len(t, acked, n)
	assertOneToOne(t, e, acked)

	// Both servers' views follow the table (watch).
	for i, s := range srv {
		require.Eventually(t, func() bool { return len(s.Leases()) >= n }, 10*time.Second, 50*time.Millisecond, "server %d view: %d leases", i, len(s.Leases()))
	}

	// A bound client is offered its address by both servers.
	for _, mac := range macs[:10] {
		offers := r.exchange(r.msg(mac, dhcpv4.MessageTypeDiscover), 5*time.Second, dhcpv4.MessageTypeOffer)
		require.Len(t, offers, 2, "offers to %v", mac)
		for _, o := range offers {
			assert.Equal(t, acked[mac.String()].String(), o.YourIPAddr.String(), "offer to %v by %v", mac, o.ServerIdentifier())
		}
	}

	// etcd goes away: renewals are answered from memory, for what is left
	// of the lease; new clients get nothing.
	e.Stop()
	newMACs := []net.HardwareAddr{clientMAC(n), clientMAC(n + 1), clientMAC(n + 2), clientMAC(n + 3)}
	for _, mac := range macs[:10] {
		ack := r.renew(mac, acked[mac.String()], 5*time.Second)
		require.NotNil(t, ack, "renewal of %v while etcd is down", mac)
		assert.Equal(t, acked[mac.String()].String(), ack.YourIPAddr.String())
		lt := ack.IPAddressLeaseTime(0)
		assert.True(t, lt > 0 && lt <= 10*time.Minute, "lease time %v", lt)
	}
	outCtx, outCancel := context.WithTimeout(t.Context(), 3*time.Second)
	down, _ := doraAll(outCtx, r, newMACs)
	outCancel()
	assert.Empty(t, down, "no lease without etcd")

	// etcd returns: the servers recover without a restart.
	e.Restart(20 * time.Second)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel2()
	t1 := time.Now()
	late, err := doraAll(ctx2, r, newMACs)
	require.NoError(t, err)
	t.Logf("new clients served %v after etcd returned", time.Since(t1).Round(time.Millisecond))
	for mac, ip := range late {
		acked[mac] = ip
	}
	assertOneToOne(t, e, acked)
	// Renewals are stored again and give a full lease, once each server's
	// store has noticed etcd is back (a second at most after its last
	// failure).
	for _, mac := range macs[:5] {
		require.Eventually(t, func() bool {
			ack := r.renew(mac, acked[mac.String()], 2*time.Second)
			return ack != nil && ack.IPAddressLeaseTime(0) == 10*time.Minute
		}, 20*time.Second, 100*time.Millisecond, "full renewal of %v after etcd returned", mac)
	}
}
