package simclient

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// InNetns runs fn on an OS thread switched into the network namespace ns
// (a name ip-netns(8) made, under /run/netns), then switches the thread
// back. Sockets fn opens stay in ns for their whole life, whichever thread
// later reads or writes them, so a test can play clients on a segment in a
// namespace without leaving its own process. fn must not start goroutines
// that open sockets: they run on other threads, in the caller's namespace.
// Needs CAP_SYS_ADMIN (root).
func InNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked: it ends with this goroutine
			// instead of serving others in the wrong namespace.
			errc <- fmt.Errorf("netns %s: switching back: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// NetnsDialer returns a dial function for net/http's Transport.DialContext
// that connects from inside namespace ns, from address local (any address
// of the namespace when invalid), within timeout (none when zero).
func NetnsDialer(ns string, local netip.Addr, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		var conn net.Conn
		err := InNetns(ns, func() error {
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// RenewRequest is the REQUEST a UEFI client bound to ip sends to extend
// its lease (RFC 2131 4.3.2, RENEWING or REBINDING): ciaddr is ip, and
// neither a server identifier nor a requested address is given. Sent by
// DHCP.Exchange (to the broadcast address, as when rebinding) it is
// answered by whichever server holds the lease.
func RenewRequest(mac net.HardwareAddr, xid uint32, ip netip.Addr) *dhcpv4.DHCPv4 {
	m := UEFIRequest(mac, xid, dhcpv4.MessageTypeRequest)
	m.ClientIPAddr = net.IP(ip.AsSlice())
	return m
}
