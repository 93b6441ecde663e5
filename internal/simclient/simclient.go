// Package simclient simulates the network-boot clients pxekit serves, as the
// benchmark (internal/bench) and tests need them: a UEFI machine's DHCP
// exchange (EDK2's packets and retransmission schedule, many machines on one
// socket), the TFTP reads of its firmware and of GRUB (the EDK2 size probe,
// RFC 7440 windows, lock-step reads), and GRUB reading its menu (word
// splitting, the default entry's kernel, initrds and answer file).
//
// It imports none of pxekit's packages, so that their own tests can use it.
// It simulates well-behaved clients only; tests of malformed traffic build
// their packets themselves.
package simclient
