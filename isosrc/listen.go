package isosrc

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Listen opens the TCP listener a boot server's HTTP side serves, on addr
// (":80" when empty, as net/http), capped by LimitListener to l.MaxConns
// connections: the listener to hand to the Serve of NewHTTPServer(h, l). A
// program that announces its server (a banner, a DHCP answer naming its
// URL) calls Listen first, so that it never points clients at a port it
// could not get.
//
// The two usual failures come with what to do about them, and errors.Is
// still finds their cause: syscall.EACCES (ports below 1024 need root or
// CAP_NET_BIND_SERVICE) and syscall.EADDRINUSE (another program holds the
// port).
func Listen(addr string, l HTTPLimits) (net.Listener, error) {
	if addr == "" {
		addr = ":80"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(addr, err)
	}
	return LimitListener(ln, l), nil
}

// listenError explains err, from listening on addr, to an operator.
func listenError(addr string, err error) error {
	port := addr
	if _, p, splitErr := net.SplitHostPort(addr); splitErr == nil {
		port = p
	}
	switch {
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("HTTP: %w: port %s needs root or the CAP_NET_BIND_SERVICE capability "+
			"(setcap cap_net_bind_service=+ep on the binary); or use a port above 1023 such as :8080", err, port)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("HTTP: %w: another program holds TCP port %s (a web server, a second pxekit?); "+
			"`ss -tlpn sport = :%s` shows which", err, port, port)
	default:
		return fmt.Errorf("HTTP: %w", err)
	}
}
