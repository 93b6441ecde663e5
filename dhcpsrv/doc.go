// Package dhcpsrv answers the first thing a bare server does: broadcast a
// DHCPDISCOVER. It tells PXE, iPXE and UEFI HTTP-boot clients which boot file
// to load and from where, choosing by the client's architecture (option 93).
//
// Two modes matter in practice. In proxy mode (proxyDHCP) it runs beside the
// network's existing DHCP server, never assigns an address, and answers only
// clients that identify as PXEClient or HTTPClient; this is the safe default.
// In full mode it also leases addresses from a pool, with reservations and
// leases that survive a crash.
//
// Sketch:
//
//	srv, err := dhcpsrv.NewServer(dhcpsrv.Config{Mode: dhcpsrv.Proxy, Interface: "eth0"})
//	if err != nil { ... }
//	go srv.Serve(ctx)
//	defer srv.Shutdown(context.Background())
//
// The package is built on github.com/insomniacslk/dhcp for packet encoding.
package dhcpsrv
