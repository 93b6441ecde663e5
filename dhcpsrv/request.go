package dhcpsrv

import "net/netip"

// requestKind is the client state that RFC 2131 section 4.3.2 lets a
// server infer from the fields of a DHCPREQUEST.
type requestKind uint8

const (
	// reqSelecting: option 54 present; the client answers an OFFER.
	reqSelecting requestKind = iota
	// reqInitReboot: option 50 without option 54; the client verifies an
	// address it remembers.
	reqInitReboot
	// reqRenewing: ciaddr only; the client renews (unicast) or rebinds
	// (broadcast) the address it uses.
	reqRenewing
)

// verdict is what the server does with a DHCPREQUEST.
type verdict uint8

const (
	verdictIgnore verdict = iota // stay silent
	verdictAck
	verdictNak
)

// requestFacts is what decideRequest needs to know about one REQUEST.
type requestFacts struct {
	kind     requestKind
	ip       netip.Addr // address asked for: option 50, else ciaddr
	ours     bool       // option 54 names this server (reqSelecting)
	inSubnet bool       // ip lies in the served subnet
	// held is the one address the server associates with the client's
	// MAC: its reservation, else its unexpired bound lease, else the
	// address of its pending OFFER. Zero when there is none.
	held netip.Addr
	free bool // ip may be given to this MAC now (pool.usableBy)
}

// decideRequest is the full-mode rule for DHCPREQUEST, which keeps every
// MAC at one address:
//
//   - SELECTING with another server's identifier: silence; the client
//     took another offer (RFC 2131 section 4.3.2), and the caller drops the
//     offer it held for it.
//   - An address outside the subnet, or none at all: NAK ("wrong network",
//     section 4.3.2 INIT-REBOOT; the same answer for the other states,
//     since no address outside the subnet can be ours).
//   - A client with a held address gets an ACK for that address only. A
//     REQUEST for any other address is NAKed, in every state: in SELECTING
//     the requested address must be the yiaddr of the OFFER the client
//     chose and the server answers what it cannot satisfy with a NAK
//     (sections 4.3.2 and 3.1 step 4); in INIT-REBOOT the server NAKs an
//     "incorrect" requested address; in RENEWING and REBINDING ciaddr
//     names a lease other than the one this server holds for the client.
//     The NAK sends the client back to INIT, and the DISCOVER that follows
//     is offered the held address: one round trip, never a second address.
//   - The client is never moved instead (old lease released, new one bound
//     in one store write): RFC 2131 has no state in which a client asks to
//     change address (a client wanting a new one starts over with
//     DISCOVER), and moving on request would let one MAC walk across the
//     pool and take addresses others were offered.
//   - A client without a held address gets ip if it is free, in every
//     state. The server thus acts as the authority for its subnet: a lost
//     lease file or an offer that expired, or was forgotten by a restart,
//     between OFFER and REQUEST costs no client a new start, and the MAC
//     still ends with one address. (RFC 2131 has a server without a record
//     of an INIT-REBOOT client stay silent, for servers that share a wire
//     without coordination; full mode assumes it owns the subnet.)
//   - An address that is not free: NAK.
func decideRequest(f requestFacts) (verdict, string) {
	switch {
	case f.kind == reqSelecting && !f.ours:
		return verdictIgnore, ""
	case !f.ip.IsValid():
		return verdictNak, "no address requested"
	case !f.inSubnet:
		return verdictNak, "wrong network"
	case f.held.IsValid() && f.held != f.ip:
		return verdictNak, "not the address held for this client"
	case !f.free:
		return verdictNak, "address not available"
	}
	return verdictAck, ""
}
