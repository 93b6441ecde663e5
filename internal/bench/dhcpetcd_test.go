package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

var etcdBench = flag.Bool("dhcp-etcd-bench", false, "measure pxekit with the file store and with the etcd store (root, etcd-server)")

// TestDHCPEtcdBench measures the two lease stores side by side, interleaved
// as the suite does, until the etcd peer is part of the dhcp suite itself.
func TestDHCPEtcdBench(t *testing.T) {
	if !*etcdBench {
		t.Skip("a measurement, not a test: run with -dhcp-etcd-bench as root")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	etcdPeer, ok := etcdDHCPPeer(self)
	if !ok {
		t.Skip("needs " + etcdBinary)
	}
	peers := []dhcpPeer{dhcpPeers(self, false)[0], etcdPeer}
	if os.Getenv("PXEKIT_BENCH_ETCD_ONLY") != "" {
		peers = peers[1:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for run := range 3 {
		for pi, p := range peers {
			r, err := measureDHCP(ctx, p, false, fmt.Sprintf("e%c%d", 'a'+pi, run), byte(run+100))
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			t.Logf("run %d %-22s %6.0f DORA/s  p50 %6.2f ms  p99 %6.2f ms  failed %d  server CPU %v/client",
				run+1, p.name, r.perSec, float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.failed, r.cpuPer)
		}
	}
}
