// Package bootmenu writes network-boot menus — GRUB grub.cfg for UEFI,
// pxelinux.cfg files for BIOS, iPXE scripts — from a typed model, with the
// kernel arguments each installer needs to run unattended.
//
// Hand-written menus break in the same few ways: GRUB parses a linux line
// like a shell, so Ubuntu's ds=nocloud-net;s=URL is cut at the ';' unless
// quoted; EL7's GRUB under shim wants linuxefi while current GRUBs do not;
// d-i asks questions before it reads its preseed; installers pick the wrong
// NIC on multi-NIC servers without BOOTIF. Here argument values are data:
// Render quotes or escapes them for the target loader, and a value that
// cannot be carried safely (a newline, a NUL, "${" for iPXE) is an error
// wrapping ErrUnsafe — never an injected line.
//
// The pieces:
//
//   - Menu and Entry are the model; KV, Flag and BootIF build kernel
//     arguments. BootIF is filled in by the loader at boot time
//     ($net_default_mac in GRUB, ${netX/mac:hexhyp} in iPXE, IPAPPEND 2 in
//     pxelinux).
//   - Render(menu, kind, Options) produces the file. Options.HTTPBase loads
//     kernels over HTTP where the loader can (iPXE always, GRUB when its
//     GRUBDialect has the http module); TFTP paths otherwise.
//     DialectFor(osID) picks linux vs linuxefi and HTTP support for the
//     GRUB shipped with an OS; GRUBDebian describes Debian's signed
//     grubnetx64.efi.
//   - InstallArgs(osID, InstallInput) returns installer arguments for
//     anaconda, subiquity and debian-installer, by OS identifier
//     ("rocky-9.0", "ubuntu-22.04", "debian-12"); InstallMenu is the
//     one-call path to "install X from repo R with answer file A, or boot
//     the local disk". InstallInput also carries what an installer must know
//     before it can fetch its answer file: for d-i the hostname, domain and
//     a static address (netcfg asks before the preseed is read), for
//     anaconda and Ubuntu a static ip=; nameservers and a syslog target.
//   - GRUBConfigNames and PXELinuxConfigNames list per-host file names in
//     the order the loaders ask for them; ParseConfigName maps a requested
//     name back to the client, so a TFTP server can render per-host menus
//     on request. GRUBPerHostSnippet gives the same to Debian's GRUB, which
//     only ever asks for grub.cfg.
//
// The package does no I/O: it returns bytes, and the caller serves them.
package bootmenu
