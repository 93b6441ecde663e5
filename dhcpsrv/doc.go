// Package dhcpsrv is the DHCP side of network installation: it tells a
// machine that powers on which boot program to fetch, and in full mode also
// gives it an address.
//
// Three layers, usable separately:
//
//   - Classify turns a decoded request into a Client: MAC, architecture
//     (option 93, or the "Arch:" field of option 60 when 93 is missing),
//     client GUID, PXE / UEFI HTTP boot / iPXE, vendor and user class, relay.
//     The server adds Client.Proxy: whether the address comes from another
//     server (proxy mode).
//   - A BootPolicy turns a Client into a BootAnswer, as an http.Handler
//     answers a request; BootFunc adapts a function. BootTable is the
//     default: pxelinux.0 for BIOS, shimx64.efi (if present) or grubx64.efi
//     for x86-64 UEFI, shimaa64.efi (if present) or grubaa64.efi for ARM64
//     UEFI, an http:// URL for UEFI HTTP boot, and an iPXE script for iPXE
//     so that iPXE never chainloads itself. In proxy mode x86-64 UEFI PXE
//     clients get iPXE (ProxyUEFI): GRUB would take its TFTP server from
//     the other server's ACK, which names none. Prefix serves loaders from a
//     directory per profile; per-host answers are a BootPolicy of the
//     caller's that may call a table for the rest.
//   - Server answers on one interface in ModeProxy (the default: only
//     network-boot clients, no addresses, ports 67 and 4011, so it can sit
//     next to an existing DHCP server) or ModeFull (pool, reservations,
//     leases per RFC 2131, boot information for booting clients).
//
// Around them: Bindings remembers which MAC stands behind which address
// (from DHCP events, else the kernel's neighbour table, read at most once
// per second), so that TFTP and HTTP requests can be tied to a machine;
// DefaultInterface picks the interface to serve when none is named; and
// Nameservers reads the resolvers a network client can use too.
//
// The server decodes with github.com/insomniacslk/dhcp but owns its sockets:
// one per port, bound to the interface (SO_BINDTODEVICE), so the arrival
// interface is always known and broadcasts leave where the client is. A
// client without an address is answered by broadcast on that interface, which
// every firmware and installer client accepts and which needs neither a raw
// socket nor ARP table writes. Relayed requests are answered to the relay
// (giaddr:67), renewals and INFORMs by unicast to ciaddr.
//
// Listen opens the sockets and Serve answers on them, as net.Listen and
// http.Server.Serve do: a program calls Listen before it announces that it
// serves, so a port already taken is reported first, with the likely reason
// (a port below 1024 without root or CAP_NET_BIND_SERVICE, another DHCP
// server holding it); errors.Is still finds the cause. Serve alone still
// listens itself. ServeWith runs DHCP together with the TFTP and HTTP
// servers its answers point at (Peer), starting DHCP last and stopping it
// first.
//
// Safety: a second server on the same interface and port in the same network
// namespace is refused (ErrAlreadyServing); handlers run in a bounded pool;
// each MAC is rate limited; in full mode each MAC holds one address at most
// (one pending offer, which a retransmitted DISCOVER gets again, or one
// lease; a REQUEST for another address is NAKed); a reply never exceeds the
// client's option 57 (576 bytes by default) and a boot file longer than the
// 128-byte BOOTP field is an error, not a cut. Requests dropped (malformed,
// over the rate, queue full), NAKed or left unanswered are counted per
// reason and logged as one summary line per minute at most, never one line
// per packet; text from packets is cut short in logs and errors, and MACs
// are logged as aa:bb:cc:dd:ee:ff.
//
// Leases live behind the LeaseStore interface. The default FileStore is an
// append-only log written over space zeroed ahead and flushed with
// fdatasync, with group commit and compaction; an ACK is sent
// only after its lease is on disk, so neither a clean restart nor kill -9
// loses a lease or gives an address twice. Several servers may share one
// lease table through a SharedLeaseStore (package dhcpsrv/etcdstore keeps
// it in etcd): every lease is claimed in one compare-and-set transaction,
// so no address goes to two MACs and no MAC gets two addresses; each server
// asks the store before it offers, so all offer a client the same address,
// and follows the other servers' writes. While the store is unreachable a
// server answers renewals of the leases it knows for their remaining time
// only, grants no new lease, and resumes by itself when the store returns.
//
// Every message handled is reported to Config.OnEvent, which is how callers
// show progress per machine and learn which MAC holds which address
// (Bindings.Observe can be OnEvent directly).
package dhcpsrv
