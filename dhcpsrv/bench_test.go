package dhcpsrv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func BenchmarkProxyDiscover(b *testing.B) {
	s := newTestServer(b, Config{Mode: ModeProxy})
	raw := buildDiscover(b, recordedClients[0]).ToBytes()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := decode(raw)
		if out, err := s.handle(context.Background(), req, 67, zeroSrc); err != nil || out == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullDORA measures one DISCOVER+REQUEST with the fsync'd lease
// file, sequentially (the worst case for group commit).
func BenchmarkFullDORA(b *testing.B) {
	sub := testSubnet()
	sub.Prefix = netipPrefix("10.0.0.0/8")
	sub.First, sub.Last = netipAddr("10.1.0.0"), netipAddr("10.254.255.255")
	s := newTestServer(b, Config{Mode: ModeFull, Subnet: sub, LeaseFile: filepath.Join(b.TempDir(), "leases")})
	i := 0
	for b.Loop() {
		i++
		disc := plainDiscover(mustMAC(fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)))
		out, err := s.handle(context.Background(), disc, 67, zeroSrc)
		if err != nil {
			b.Fatal(err)
		}
		offer, _ := dhcpv4.FromBytes(out.bytes)
		if _, err := s.handle(context.Background(), asRequest(disc, testServerIP, addrOf(offer.YourIPAddr)), 67, zeroSrc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDORAMemory is BenchmarkFullDORA without the disk: the CPU cost of
// decoding, deciding and encoding both exchanges.
func BenchmarkDORAMemory(b *testing.B) {
	sub := testSubnet()
	sub.Prefix = netipPrefix("10.0.0.0/8")
	sub.First, sub.Last = netipAddr("10.1.0.0"), netipAddr("10.254.255.255")
	s := newTestServer(b, Config{Mode: ModeFull, Subnet: sub})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		mac := mustMAC(fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff))
		b.StopTimer()
		disc := plainDiscover(mac).ToBytes()
		b.StartTimer()
		req, err := decode(disc)
		if err != nil {
			b.Fatal(err)
		}
		out, err := s.handle(context.Background(), req, 67, zeroSrc)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		offer, _ := dhcpv4.FromBytes(out.bytes)
		raw := asRequest(plainDiscover(mac), testServerIP, addrOf(offer.YourIPAddr)).ToBytes()
		b.StartTimer()
		req, err = decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.handle(context.Background(), req, 67, zeroSrc); err != nil {
			b.Fatal(err)
		}
	}
}
