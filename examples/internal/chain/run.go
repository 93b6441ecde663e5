package chain

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/tftpsrv"
)

// Servers are an example's network services, started and stopped together.
type Servers struct {
	Log      *slog.Logger
	TFTP     *tftpsrv.Server
	TFTPAddr string
	// HTTP is made by NewHTTPServer; it serves on HTTPAddr through
	// LimitListener with HTTPLimits (the same limits it was made with).
	HTTP       *http.Server
	HTTPAddr   string
	HTTPLimits HTTPLimits
	// Packet are more UDP services (a syslog receiver), by listen address.
	Packet map[string]func(ctx context.Context, conn net.PacketConn) error
	// DHCP, when set, makes the DHCP server; it starts last, because a
	// client that gets an offer must find the files served.
	DHCP func() (*dhcpsrv.Server, error)
	// DHCPWhere names the DHCP sockets in errors ("eth0:67").
	DHCPWhere string
}

// Run listens (every socket, DHCP's included), calls ready once everything
// serves, and runs until ctx ends or a service fails; then it shuts
// everything down (5 s at most).
// It raises the open-file limit first (RaiseFileLimit), so that the HTTP
// connection cap leaves descriptors for TFTP.
func (s *Servers) Run(ctx context.Context, ready func()) error {
	if _, err := RaiseFileLimit(); err != nil && s.Log != nil {
		s.Log.Warn("cannot raise the open-file limit", "error", err)
	}
	errc := make(chan error, 3+len(s.Packet))
	tl, err := net.ListenPacket("udp", s.TFTPAddr)
	if err != nil {
		return PortError("TFTP", s.TFTPAddr, err)
	}
	hl, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		tl.Close()
		return PortError("HTTP", s.HTTPAddr, err)
	}
	hl = LimitListener(hl, s.HTTPLimits)
	go func() { errc <- s.TFTP.Serve(tl) }()
	go func() { errc <- s.HTTP.Serve(hl) }()
	pctx, stopPackets := context.WithCancel(ctx)
	defer stopPackets()
	abort := func(err error) error {
		stopPackets()
		s.TFTP.Close()
		s.HTTP.Close()
		return err
	}
	for addr, serve := range s.Packet {
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			return abort(PortError("UDP", addr, err))
		}
		go func() {
			defer conn.Close()
			go func() {
				<-pctx.Done()
				conn.Close()
			}()
			errc <- serve(pctx, conn)
		}()
	}
	var dhcp *dhcpsrv.Server
	if s.DHCP != nil {
		if dhcp, err = s.DHCP(); err != nil {
			return abort(err)
		}
		// Bind before announcing: a port held by another server fails
		// here, not after the banner.
		if err := dhcp.Listen(); err != nil {
			_ = dhcp.Shutdown(context.Background())
			where := s.DHCPWhere
			if where == "" {
				where = "ports 67 and 4011"
			}
			return abort(PortError("DHCP", where, err))
		}
		go func() { errc <- dhcp.Serve(ctx) }()
	}
	if ready != nil {
		ready()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		if errors.Is(runErr, http.ErrServerClosed) || errors.Is(runErr, dhcpsrv.ErrServerClosed) {
			runErr = nil
		}
	}
	if s.Log != nil {
		s.Log.Info("shutting down")
	}
	stopPackets()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if dhcp != nil {
		_ = dhcp.Shutdown(sctx)
	}
	_ = s.HTTP.Shutdown(sctx)
	_ = s.TFTP.Shutdown(sctx)
	return runErr
}
