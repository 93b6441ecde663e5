package dhcpsrv

import (
	"net/netip"
)

// ServeInterface chooses the interface a boot server serves and the
// address its clients reach it at: the first IPv4 address of the named
// interface (InterfaceAddr) when name is not empty, else DefaultInterface's
// choice. With no name and no interface that qualifies, loopback ("lo",
// 127.0.0.1) is the answer when loopbackOK: a server that runs no DHCP
// can still serve TFTP and HTTP to clients on this host, as tests and a
// first try do. Errors say what is missing and name no flag: callers add
// how their user names an interface.
func ServeInterface(name string, loopbackOK bool) (string, netip.Addr, error) {
	return serveInterface(name, loopbackOK, DefaultInterface, InterfaceAddr)
}

// serveInterface is ServeInterface with the interface look-ups given, for
// tests.
func serveInterface(name string, loopbackOK bool, def func() (string, netip.Addr, error), named func(string) (netip.Prefix, error)) (string, netip.Addr, error) {
	if name != "" {
		p, err := named(name)
		if err != nil {
			return "", netip.Addr{}, err
		}
		return name, p.Addr(), nil
	}
	n, addr, err := def()
	if err != nil && loopbackOK {
		return "lo", netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	return n, addr, err
}

// DefaultNameservers returns the DNS servers to hand clients when the
// operator names none: the host's own (Nameservers("")), else serverIP.
// Some address matters more than it seems: Debian's installer stops to
// ask for a name server when DHCP gives none, before it reads the preseed
// that would answer; on an isolated install network, where the host has
// no usable resolver either, the boot server's address lets it carry on,
// since it fetches everything from that address by number.
func DefaultNameservers(serverIP netip.Addr) []netip.Addr {
	return defaultNameservers("", serverIP)
}

func defaultNameservers(resolvConf string, serverIP netip.Addr) []netip.Addr {
	if ns := Nameservers(resolvConf); len(ns) > 0 {
		return ns
	}
	return []netip.Addr{serverIP}
}
