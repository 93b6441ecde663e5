package dhcpsrv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeMatchesCodec(t *testing.T) {
	base := func() *dhcpv4.DHCPv4 {
		return &dhcpv4.DHCPv4{
			OpCode: dhcpv4.OpcodeBootReply, HWType: 1, ClientHWAddr: mustMAC("52:54:00:12:34:56"),
			TransactionID: dhcpv4.TransactionID{1, 2, 3, 4}, Flags: 0x8000, NumSeconds: 7, HopCount: 1,
			ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4(10, 77, 0, 100), ServerIPAddr: net.IPv4(10, 77, 0, 1).To4(),
			GatewayIPAddr: nil, Options: dhcpv4.Options{},
		}
	}
	tests := []struct {
		name string
		mod  func(m *dhcpv4.DHCPv4)
	}{
		{"no options", func(*dhcpv4.DHCPv4) {}},
		{"typical offer", func(m *dhcpv4.DHCPv4) {
			m.Options.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
			m.Options.Update(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 1)))
			m.Options.Update(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
			m.Options.Update(dhcpv4.OptIPAddressLeaseTime(time.Hour))
			m.Options[optVendorClass] = []byte("PXEClient")
			m.Options[optBootFile] = []byte("ipxe.efi")
			m.BootFileName = "ipxe.efi"
		}},
		{"relay info goes last", func(m *dhcpv4.DHCPv4) {
			m.Options[82] = []byte{1, 4, 'e', 't', 'h', '0'}
			m.Options[97] = bytes.Repeat([]byte{9}, 17)
			m.Options[3] = []byte{10, 77, 0, 1}
		}},
		{"empty and long values", func(m *dhcpv4.DHCPv4) {
			m.Options[43] = nil
			m.Options[77] = bytes.Repeat([]byte{'x'}, 600)
			m.Options[254] = []byte{1}
			m.Options[1] = []byte{255, 255, 0, 0}
		}},
		{"names cut like the codec", func(m *dhcpv4.DHCPv4) {
			m.ServerHostName = strings.Repeat("s", 80)
			m.BootFileName = strings.Repeat("f", 200)
			m.GatewayIPAddr = net.IPv4(10, 78, 0, 1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.mod(m)
			assert.Equal(t, m.ToBytes(), encode(m))
		})
	}
}

func TestLeaseJSONMatchesEncodingJSON(t *testing.T) {
	exp := time.Date(2026, 11, 23, 23, 3, 8, 123456789, time.UTC)
	tests := []struct {
		name string
		l    Lease
	}{
		{"bound", Lease{IP: netip.MustParseAddr("10.0.0.1"), MAC: mustMAC("02:ab:cd:ef:00:01"), Expiry: exp, State: LeaseBound}},
		{"declined without MAC", Lease{IP: netip.MustParseAddr("10.0.0.2"), Expiry: exp.Round(time.Second), State: LeaseDeclined}},
		{"plain host name", Lease{IP: netip.MustParseAddr("10.0.0.3"), MAC: mustMAC("02:00:00:00:00:03"), Hostname: "node-3.lab", Expiry: exp, State: LeaseReleased}},
		{"host name json escapes", Lease{IP: netip.MustParseAddr("10.0.0.4"), Hostname: "a\"b\\c<d>&\x01é\xff", Expiry: exp, State: LeaseBound}},
		{"local time zone", Lease{IP: netip.MustParseAddr("10.0.0.5"), Expiry: exp.In(time.FixedZone("x", 5*3600+1800)), State: LeaseBound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.l
			j := leaseJSON{IP: l.IP, Hostname: l.Hostname, Expiry: l.Expiry, State: l.State}
			if len(l.MAC) > 0 {
				j.MAC = l.MAC.String()
			}
			want, err := json.Marshal(j)
			require.NoError(t, err)
			got, err := appendLeaseJSON(nil, l)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
			var back Lease
			require.NoError(t, json.Unmarshal(got, &back))
			assert.True(t, l.Expiry.Equal(back.Expiry))
			assert.Equal(t, l.MAC, back.MAC)
		})
	}
}

// TestFileStoreAsyncAndClose checks that every asynchronous write gets
// exactly one answer, durable ones before Close returns and the rest with
// ErrStoreClosed.
func TestFileStoreAsyncAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	st, err := OpenFileStore(path)
	require.NoError(t, err)
	const n = 500
	var mu sync.Mutex
	answers := map[netip.Addr]error{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			l := Lease{IP: addrU32(0x0a000000 + uint32(i)), MAC: mustMAC("02:00:00:00:00:01"), Expiry: time.Now().Add(time.Hour), State: LeaseBound}
			st.putAsync(l, func(err error) {
				mu.Lock()
				_, dup := answers[l.IP]
				answers[l.IP] = err
				mu.Unlock()
				assert.False(t, dup, "two answers for %v", l.IP)
				wg.Done()
			})
		}()
	}
	require.NoError(t, st.Close())
	wg.Wait()
	require.Len(t, answers, n)
	st, err = OpenFileStore(path)
	require.NoError(t, err)
	defer st.Close()
	leases, err := st.Load(context.Background())
	require.NoError(t, err)
	stored := map[netip.Addr]bool{}
	for _, l := range leases {
		stored[l.IP] = true
	}
	for ip, err := range answers {
		if err == nil {
			assert.True(t, stored[ip], "%v acknowledged but not stored", ip)
		} else {
			assert.ErrorIs(t, err, ErrStoreClosed)
		}
	}
}

// syncStore is a LeaseStore without asynchronous writes, as a caller's
// database store would be.
type syncStore struct {
	mu   sync.Mutex
	puts int
}

func (s *syncStore) Load(context.Context) ([]Lease, error) { return nil, nil }
func (s *syncStore) Put(context.Context, Lease) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return nil
}
func (s *syncStore) Close() error { return nil }

func TestServeOnePaths(t *testing.T) {
	tests := []struct {
		name  string
		store LeaseStore
		sync  bool // as a worker does
	}{
		{"reader, file store", nil, false},
		{"worker, file store", nil, true},
		{"worker, caller's store", &syncStore{}, true},
		{"reader, memory store", NewMemoryStore(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Mode: ModeFull, Leases: tc.store}
			if tc.store == nil {
				cfg.LeaseFile = filepath.Join(t.TempDir(), "leases")
			}
			s := newTestServer(t, cfg)
			if _, ok := s.store.(asyncStore); !ok {
				assert.True(t, s.mayBlock(asRequest(plainDiscover(mustMAC("02:00:00:00:00:01")), testServerIP, netip.MustParseAddr("10.77.0.100")), 67))
			}
			p := &ackPrinter{w: bufioDiscard(), waiting: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
			disc := plainDiscover(mustMAC("02:00:00:00:00:01"))
			ch := make(chan *dhcpv4.DHCPv4, 4)
			p.waiting[disc.TransactionID] = ch
			s.serveOne(context.Background(), p, 67, zeroSrc, disc, tc.sync)
			offer := <-ch
			require.Equal(t, dhcpv4.MessageTypeOffer, offer.MessageType())
			s.serveOne(context.Background(), p, 67, zeroSrc, asRequest(disc, testServerIP, addrOf(offer.YourIPAddr)), tc.sync)
			select {
			case ack := <-ch:
				assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
				assert.Equal(t, offer.YourIPAddr, ack.YourIPAddr)
			case <-time.After(5 * time.Second):
				t.Fatal("no ACK")
			}
			select {
			case m := <-ch:
				t.Fatalf("second answer %v", m.MessageType())
			case <-time.After(50 * time.Millisecond):
			}
			if st, ok := tc.store.(*syncStore); ok {
				assert.Equal(t, 1, st.puts)
			}
			assert.Len(t, s.Leases(), 1)
		})
	}
}

func bufioDiscard() *bufio.Writer { return bufio.NewWriter(io.Discard) }
