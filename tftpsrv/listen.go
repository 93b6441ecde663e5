package tftpsrv

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Listen opens the UDP socket ListenAndServe serves, on addr (":69" when
// empty: every address, IPv4 and IPv6). A program that announces its boot
// server (a banner, a DHCP answer naming it) calls Listen first, so that it
// never points clients at a port it could not get, then hands the socket
// to Server.Serve.
//
// The socket is a *net.UDPConn, on which Serve asks the kernel for each
// datagram's destination address and interface: replies then leave from
// the address the client talked to, Request.LocalAddr is set, and blksize
// is capped to the interface's MTU.
//
// The two usual failures come with what to do about them, and errors.Is
// still finds their cause: syscall.EACCES (ports below 1024 need root or
// CAP_NET_BIND_SERVICE) and syscall.EADDRINUSE (another program, often a
// TFTP server, holds the port).
func Listen(addr string) (net.PacketConn, error) {
	if addr == "" {
		addr = ":69"
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, listenError(addr, err)
	}
	return conn, nil
}

// listenError explains err, from listening on addr, to an operator.
func listenError(addr string, err error) error {
	port := addr
	if _, p, splitErr := net.SplitHostPort(addr); splitErr == nil {
		port = p
	}
	switch {
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("tftpsrv: %w: port %s needs root or the CAP_NET_BIND_SERVICE capability "+
			"(setcap cap_net_bind_service=+ep on the binary); for tests, or behind a port redirect, "+
			"use an unprivileged port such as :6969", err, port)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("tftpsrv: %w: another program holds UDP port %s "+
			"(a TFTP server such as tftpd-hpa or dnsmasq with enable-tftp, a second pxekit?); "+
			"`ss -ulpn sport = :%s` shows which",
			err, port, port)
	default:
		return fmt.Errorf("tftpsrv: %w", err)
	}
}
