package vmtest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DHCPServerConfig describes a plain DHCP server (addresses only, no boot
// information), the "existing DHCP server" next to which a proxyDHCP server
// must work.
type DHCPServerConfig struct {
	// First and Last bound the address pool (default .100 to .199 of the
	// lab network).
	First, Last netip.Addr
	// DNS is handed out as option 6 (default: the lab's server address,
	// so the Debian installer does not stop to ask for a name server).
	DNS netip.Addr
	// Router is handed out as option 3 when valid (default: none).
	Router netip.Addr
}

// StartDHCPServer runs BusyBox udhcpd (Debian package busybox) in the
// namespace as an independent DHCP server that hands out addresses and no
// boot file. Its log is OutDir/<name>.log, its configuration
// OutDir/<name>.conf. The test is skipped when busybox is not installed.
func (l *Lab) StartDHCPServer(t testing.TB, name string, cfg DHCPServerConfig) *Proc {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("vmtest: skipped: busybox (udhcpd) not installed (Debian package busybox)")
	}
	conf, err := l.udhcpdConfig(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// -f: foreground, logging to stderr. -a 10: the ARP probe before each
	// offer waits 10 ms instead of 2 s.
	return l.Start(t, name, bb, "udhcpd", "-f", "-a", "10", conf)
}

func (l *Lab) udhcpdConfig(name string, cfg DHCPServerConfig) (string, error) {
	base := l.addr.Masked().Addr().As4()
	if !cfg.First.IsValid() {
		b := base
		b[3] = 100
		cfg.First = netip.AddrFrom4(b)
	}
	if !cfg.Last.IsValid() {
		b := base
		b[3] = 199
		cfg.Last = netip.AddrFrom4(b)
	}
	if !cfg.DNS.IsValid() {
		cfg.DNS = l.addr.Addr()
	}
	for _, a := range []netip.Addr{cfg.First, cfg.Last} {
		if !l.addr.Masked().Contains(a) {
			return "", fmt.Errorf("vmtest: DHCP pool address %s is outside %s", a, l.addr.Masked())
		}
	}
	m := ^uint32(0) << (32 - l.addr.Bits())
	var b strings.Builder
	fmt.Fprintf(&b, "start %s\nend %s\ninterface %s\n", cfg.First, cfg.Last, l.iface)
	b.WriteString("max_leases 100\n")
	fmt.Fprintf(&b, "lease_file %s\n", filepath.Join(l.out, sanitize(name)+".leases"))
	fmt.Fprintf(&b, "pidfile %s\n", filepath.Join(l.out, sanitize(name)+".pid"))
	fmt.Fprintf(&b, "option subnet %d.%d.%d.%d\n", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
	fmt.Fprintf(&b, "option dns %s\n", cfg.DNS)
	if cfg.Router.IsValid() {
		fmt.Fprintf(&b, "option router %s\n", cfg.Router)
	}
	b.WriteString("option lease 3600\n")
	path := filepath.Join(l.out, sanitize(name)+".conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("vmtest: udhcpd config: %w", err)
	}
	// udhcpd refuses to start without an existing lease file.
	if err := os.WriteFile(filepath.Join(l.out, sanitize(name)+".leases"), nil, 0o644); err != nil {
		return "", fmt.Errorf("vmtest: udhcpd lease file: %w", err)
	}
	return path, nil
}
