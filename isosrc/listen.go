package isosrc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// Listen opens the TCP listener a boot server's HTTP side serves, on addr
// (":80" when empty, as net/http), capped by LimitListener to l.MaxConns
// connections: the listener to hand to the Serve of NewHTTPServer(h, l). A
// program that announces its server (a banner, a DHCP answer naming its
// URL) calls Listen first, so that it never points clients at a port it
// could not get. Like every LimitListener, it ends a connection its
// client closed first with a reset, so that a rebooting GRUB finds no
// state of its previous boot (see LimitListener).
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

// limitedTCPConn frees its listener slot once on Close and keeps every
// method of *net.TCPConn, ReadFrom (sendfile) included. Read notes the
// client's FIN; Close then resets instead of closing gracefully when
// nothing sent is unacknowledged (why: LimitListener).
type limitedTCPConn struct {
	*net.TCPConn
	once       sync.Once
	release    func()
	peerClosed atomic.Bool
}

func (c *limitedTCPConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if err == io.EOF {
		c.peerClosed.Store(true)
	}
	return n, err
}

func (c *limitedTCPConn) Close() error {
	if c.peerClosed.Load() && allAcknowledged(c.TCPConn) {
		_ = c.TCPConn.SetLinger(0) // Close sends RST, keeps no state
	}
	err := c.TCPConn.Close()
	c.once.Do(c.release)
	return err
}
