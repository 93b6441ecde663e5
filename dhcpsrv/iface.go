package dhcpsrv

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
)

// DefaultInterface returns the first interface that is up, is not a
// loopback and has an IPv4 address, with that address: the interface to
// serve when the caller names none.
func DefaultInterface() (name string, addr netip.Addr, err error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", netip.Addr{}, err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if a := firstIPv4(ifc); a.IsValid() {
			return ifc.Name, a, nil
		}
	}
	return "", netip.Addr{}, errors.New("dhcpsrv: no interface is up, non-loopback and has an IPv4 address")
}

func firstIPv4(ifc net.Interface) netip.Addr {
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// maxResolvConf bounds the read of a resolv.conf; real ones are a few
// hundred bytes.
const maxResolvConf = 64 << 10

// Nameservers returns the IPv4 nameservers of the resolv.conf at path (""
// means /etc/resolv.conf) that are not loopback addresses: what a client on
// the network can use too, unlike a local stub resolver at 127.0.0.53. The
// result is empty when there are none or the file cannot be read.
func Nameservers(resolvConf string) []netip.Addr {
	if resolvConf == "" {
		resolvConf = "/etc/resolv.conf"
	}
	f, err := os.Open(resolvConf)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResolvConf))
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for line := range bytes.Lines(data) {
		fields := bytes.Fields(line)
		if len(fields) < 2 || string(fields[0]) != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(string(fields[1]))
		if err != nil || !ip.Is4() || ip.IsLoopback() || ip.IsUnspecified() {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == ip
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}
