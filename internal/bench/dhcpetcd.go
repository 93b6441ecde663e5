package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/dhcpsrv/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The etcd peer of the DHCP suite: pxekit in full mode with its leases in
// etcd (dhcpsrv/etcdstore) instead of the lease file. The server process
// starts a one-member etcd of its own inside the server namespace, data on
// the same disk as the lease file, and stops it when it stops; the CPU
// figure of the suite therefore counts pxekit only, not etcd.
const (
	dhcpEtcdEnv = "PXEKIT_BENCH_DHCPSRV_ETCD" // "iface|dir"
	etcdBinary  = "/usr/bin/etcd"
)

func init() {
	v := os.Getenv(dhcpEtcdEnv)
	if v == "" {
		return
	}
	iface, dir, _ := strings.Cut(v, "|")
	if err := serveWithEtcd(iface, dir); err != nil {
		fmt.Fprintln(os.Stderr, "dhcpsrv (etcd):", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// etcdDHCPPeer is the peer for dhcpPeers (full mode only); false when etcd
// is not installed (Debian package etcd-server).
func etcdDHCPPeer(self string) (dhcpPeer, bool) {
	if _, err := os.Stat(etcdBinary); err != nil {
		return dhcpPeer{}, false
	}
	return dhcpPeer{name: "pxekit (etcd store)", start: func(ctx context.Context, n *benchNet, dir string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.srvNS, self)
		cmd.Env = append(os.Environ(), dhcpEtcdEnv+"="+n.srvIf+"|"+dir)
		cmd.Stderr = os.Stderr
		return cmd, cmd.Start()
	}}, true
}

// serveWithEtcd runs etcd on the loopback of the (fresh) server namespace
// and the DHCP server on it until SIGTERM.
func serveWithEtcd(iface, dir string) error {
	const endpoint = "http://127.0.0.1:2379"
	etcd := exec.Command(etcdBinary, "--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "bench=http://127.0.0.1:2380", "--logger", "zap", "--log-level", "error")
	etcd.Stderr = os.Stderr
	etcd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := etcd.Start(); err != nil {
		return err
	}
	defer stopProcess(etcd, 5*time.Second)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Get(ctx, "probe")
		cancel()
		if err == nil {
			ready = true
			break
		}
	}
	if !ready {
		return fmt.Errorf("etcd not ready: %v", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := etcdstore.New(context.Background(), etcdstore.Config{Client: cli, Prefix: "bench", Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := dhcpsrv.New(dhcpsrv.Config{
		Interface: iface, Mode: dhcpsrv.ModeFull, Leases: st, RatePerMAC: -1,
		Boot: &dhcpsrv.BootTable{HTTPBase: "http://" + benchSrvIP + ":8080"}, Logger: log, Subnet: benchSubnet(),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	endProfile := startProfile(os.Getenv(dhcpProfileEnv))
	err = srv.Serve(ctx)
	endProfile()
	_ = srv.Shutdown(context.Background())
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
