package answerfile

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ReportSender returns who posted a report to a callback route: ip is the
// address the request came from (r.RemoteAddr, an IPv4-mapped address
// unmapped; zero when it does not parse), and mac is the MAC address the
// route's {mac} path wildcard names, in any of the separator styles of
// net.ParseMAC or dash-separated ("52-54-00-12-34-56", the form a
// Callback.URL path can carry); nil when the route has no {mac}. A {mac}
// that is not a 6-byte Ethernet address is an error wrapping ErrReport.
//
// Both are the sender's claims: anyone on the network can post to any path
// from its own address. A server trusts the MAC only as far as something
// else vouches for it, such as a secret in the same path, or a MAC its own
// DHCP server has seen boot.
func ReportSender(r *http.Request) (ip netip.Addr, mac net.HardwareAddr, err error) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap()
	}
	p := r.PathValue("mac")
	if p == "" {
		return ip, nil, nil
	}
	mac, err = net.ParseMAC(strings.ReplaceAll(p, "-", ":"))
	if err != nil || len(mac) != 6 {
		return ip, nil, fmt.Errorf("%w: %.40q in the path is not a MAC address", ErrReport, p)
	}
	return ip, mac, nil
}

// String is the event in one line for a log: its type, name and result,
// the empty ones left out ("finish subiquity/Install/install SUCCESS").
func (e *Event) String() string {
	var parts []string
	for _, s := range []string{e.Type, e.Name, e.Result} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}
