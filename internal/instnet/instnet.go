// Package instnet holds the one type answerfile and bootmenu share for
// the installer's network: what an installer must know before it can read
// its answer file. answerfile derives it from a spec (answerfile.Set's
// Installer); bootmenu puts it on the kernel line (it is embedded in
// bootmenu.InstallInput), so that a composer writes
// InstallInput{InstallerNet: set.Installer} and the two never drift.
// Both packages export it as InstallerNet.
package instnet

import "net/netip"

// NetcfgNoGateway is the answer to d-i's netcfg/get_gateway that means
// "no gateway", on the kernel line and in a preseed file alike: netcfg
// replaces an empty answer with a guess, the subnet's first address
// (static.c), and routes through it.
const NetcfgNoGateway = "none"

// Net is the network set-up of an installer before it reads its answer
// file. The zero value means DHCP and the installers' own defaults.
type Net struct {
	// Hostname and Domain name the machine while it installs (answerfile:
	// the spec's hostname up to its first dot, the rest of an FQDN or
	// network.domain). d-i needs them on the kernel line: its network
	// comes up (and its questions are asked) before the preseed file is
	// read, and a name given there wins over the preseed's. Anaconda and
	// Ubuntu get Hostname in the static ip= only; their answer files name
	// the installed system. Defaults for d-i: "unassigned-hostname" and
	// "unassigned-domain", which d-i documents as "take it from DHCP".
	Hostname, Domain string
	// Address, when valid, is a static IPv4 address (with its prefix
	// length) for the installer instead of DHCP, so that it can fetch its
	// answer file on a network without a DHCP server for it: d-i's
	// netcfg/get_ipaddress family, dracut's and casper's ip= (with
	// Interface, Gateway, Hostname). Default: DHCP.
	Address netip.Prefix
	// Gateway is the static default router. Invalid (the zero value) with
	// a valid Address means no default route.
	Gateway netip.Addr
	// Interface names the NIC that Address goes on in ip= (anaconda,
	// Ubuntu). Default empty: the installer's own choice; d-i always uses
	// interface=auto, which follows BOOTIF (answerfile leaves it empty for
	// Debian).
	Interface string
	// Nameservers are DNS servers for the installer: d-i's
	// netcfg/get_nameservers (so that it does not stop to ask when DHCP
	// gives none; several are joined with a space, which iPXE cannot carry:
	// give one for iPXE menus), dracut's nameserver= and, with a static
	// Address, the dns fields of casper's ip= (the first two IPv4 ones:
	// its colon-separated fields cannot carry IPv6). Addresses with a zone
	// are refused. answerfile fills in a static spec's DNS servers only;
	// with DHCP it is empty, for the boot server's own.
	Nameservers []netip.Addr
	// NoDefaultRoute tells d-i that a network without a router is expected
	// (netcfg/no_default_route), instead of stopping to ask before the
	// preseed is read. Implied by a static Address without Gateway;
	// answerfile sets it for Debian, whose install networks often have no
	// router.
	NoDefaultRoute bool
	// Offline says the install may contact no host its answer file does not
	// name (answerfile: the spec's offline switch). On the kernel line it
	// turns off what an installer looks up before it reads its answer file:
	// anaconda's geolocation (inst.geoloc=0). The answer files turn off the
	// rest.
	Offline bool
}
