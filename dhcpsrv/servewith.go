package dhcpsrv

import (
	"context"
	"time"
)

// Peer is a server that serves what DHCP answers point clients at: the
// TFTP server of the boot loaders, the HTTP server of the install tree.
// ServeWith runs it alongside DHCP.
type Peer struct {
	// Serve serves until Shutdown stops it or it fails. It runs on a
	// goroutine of its own.
	Serve func() error
	// Shutdown stops Serve gracefully, waiting for what is in flight until
	// ctx ends.
	Shutdown func(ctx context.Context) error
}

// ServeWith serves DHCP together with peers until ctx ends or one of them
// fails, in the order network boot needs: the peers are started before
// DHCP, so that a client that gets an offer finds the files it names
// served; on the way out DHCP stops first, so that nobody is sent here any
// more, then the peers, in order, all within grace. Listen s and bind the
// peers' sockets before calling it: a socket that cannot be had is then an
// error before anything serves, and a request that arrives before its
// server's Serve runs waits in its socket. It logs "shutting down" (Info)
// on the Logger when the stop begins.
//
// It returns nil when ctx ended, else the error of the Serve (s's or a
// peer's) that ended first; a Serve that returns nil ends serving too, and
// ServeWith then returns nil. What Serve and Shutdown return once the stop
// has begun is not reported: everything is stopping anyway.
func (s *Server) ServeWith(ctx context.Context, grace time.Duration, peers ...Peer) error {
	errc := make(chan error, len(peers)+1)
	for _, p := range peers {
		go func() { errc <- p.Serve() }()
	}
	// Stopped by Shutdown, as the peers are; ctx's values pass on.
	go func() { errc <- s.Serve(context.WithoutCancel(ctx)) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	_ = s.Shutdown(sctx)
	for _, p := range peers {
		_ = p.Shutdown(sctx)
	}
	return err
}
