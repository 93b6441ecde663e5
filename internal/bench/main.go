// Command bench measures pxekit side by side with the servers a system
// administrator would otherwise run (dnsmasq, tftpd-hpa, atftpd,
// kea-dhcp4-server, nginx), in one run on one machine, and prints medians and
// ratios against the peer measured in that same run. Absolute figures from a
// shared machine mean little; ratios taken minutes apart mean a little more.
//
// Usage (as root, on Debian 12; peers are installed with apt-get on first use):
//
//	go run ./internal/bench [-runs 5] [suite ...]
//
// Suites: tftp, tftp-loss, dhcp, iso, fleet, rack (all when none is named). Benchmarks never run
// inside "go test" without -bench; this command is the only place that
// starts peers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type suite struct {
	name string
	what string
	run  func(ctx context.Context, e *env) error
}

func suites() []suite {
	return []suite{
		{"tftp", "TFTP throughput vs tftpd-hpa, atftpd, dnsmasq", runTFTP},
		{"tftp-loss", "TFTP under 2 % packet loss between namespaces, same peers", runTFTPLoss},
		{"dhcp", "DHCP DORA/s and latency vs kea-dhcp4-server (memfile; multi-threaded, 4 threads), dnsmasq; pxekit with etcd leases", runDHCP},
		{"iso", "ISO reads and HTTP ranges vs plain files and nginx", runISO},
		{"fleet", "a simulated rack: 200 UEFI clients booting examples/fleet at once vs one alone", runFleet},
		{"rack", "1, 50, 200 simulated UEFI clients: examples/fleet vs isc-dhcp-server+tftpd-hpa+nginx (env PXEKIT_BENCH_RACK_SECUREBOOT=on|off, default off; PXEKIT_BENCH_RACK_SIZES=1,5)", runRack},
	}
}

// The peers, as Debian packages, and the daemons their post-install scripts
// may start (which would hold ports 67 and 69 on the host).
var (
	peerPackages = []string{"dnsmasq-base", "tftpd-hpa", "kea-dhcp4-server", "nginx-light", "atftp", "curl", "isc-dhcp-server"}
	peerServices = []string{"tftpd-hpa", "kea-dhcp4-server", "nginx"}
)

func main() {
	runs := flag.Int("runs", 5, "repetitions per measurement; the median is reported")
	installOnly := flag.Bool("install", false, "install every peer with apt-get, stop their system services, and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-runs N] [suite ...]\nsuites:\n", os.Args[0])
		for _, s := range suites() {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-5s %s\n", s.name, s.what)
		}
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	want := map[string]bool{}
	for _, a := range flag.Args() {
		want[a] = true
	}
	e := &env{runs: *runs, out: os.Stdout}
	if *installOnly {
		if err := e.install(ctx, peerPackages...); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		for _, svc := range peerServices {
			stopService(ctx, svc)
		}
		return
	}
	failed := false
	known := map[string]bool{}
	for _, s := range suites() {
		known[s.name] = true
		if len(want) > 0 && !want[s.name] {
			continue
		}
		fmt.Printf("== %s: %s\n", s.name, s.what)
		if err := s.run(ctx, e); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", s.name, err)
			failed = true
		}
	}
	for name := range want {
		if known[name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: unknown suite %q\n", name)
		failed = true
	}
	if failed {
		os.Exit(1)
	}
}
