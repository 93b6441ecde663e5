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
//     grubnetx64.efi, which lacks the http module but loads it from the
//     server when Secure Boot is off: its menu checks once whether the
//     module loads and falls back to TFTP paths when it is refused.
//   - InstallArgs(osID, InstallInput) returns installer arguments for
//     anaconda, subiquity and debian-installer, by OS identifier
//     ("rocky-9.0", "ubuntu-22.04", "debian-12"); InstallMenu is the
//     one-call path to "install X from repo R with answer file A, or boot
//     the local disk". InstallInput also carries what an installer must know
//     before it can fetch its answer file: for d-i the hostname, domain and
//     a static address (netcfg asks before the preseed is read), for
//     anaconda and Ubuntu a static ip=; nameservers and a syslog target.
//   - InstallInput.Kernel and Initrds replace the BootFiles table's paths
//     when the media differ from it (isosrc's detection knows the real
//     ones). RenderAll renders one menu for every loader.
//   - GRUBConfigNames and PXELinuxConfigNames list per-host file names in
//     the order the loaders ask for them; ParseConfigName maps a requested
//     name back to the client, so a TFTP server can render per-host menus
//     on request. GRUBPerHostSnippet gives the same to Debian's GRUB, which
//     only ever asks for grub.cfg. MenuKind says whether a requested name
//     is a menu at all, and which; StepOf says which step of a client's
//     boot (loader, menu, kernel, initrd) a served name marks.
//   - OSes and LookupOS list the OS identifiers accepted everywhere (the
//     same table as answerfile's and isosrc's).
//
// # Where the loaders come from
//
// The menus are read by loader binaries that the boot server serves too:
// FindLoaders collects them into Loaders, an in-memory fs.FS to serve at
// the TFTP root under the names dhcpsrv's boot table hands out
// (LoaderShim, LoaderGRUB, LoaderPXELinux, LoaderIPXESNP, ...). UEFI
// shim and GRUB come as one pair from one vendor, because under Secure
// Boot a shim trusts only its vendor's GRUB and that GRUB only its
// vendor's kernels:
//
//   - from the distribution's installation media (LoaderSource, which
//     isosrc's Distro.Loaders fills in) when LoaderSource.Vendor is set —
//     EL clones and Ubuntu;
//   - otherwise from the host's Debian packages (HostLoaderPackages:
//     grub-efi-amd64-signed's network GRUB, shim-signed), which is right
//     for Debian; each source is the other's fallback;
//   - AArch64's pair from grub-efi-arm64-signed, else from a Debian arm64
//     netboot tree (LoaderSource.Netboot).
//
// pxelinux and its modules (pxelinux, syslinux-common) and iPXE (ipxe) are
// always the host's. With the host's GRUB comes GRUB's http module from
// grub-efi-amd64-bin (LoaderGRUBHTTPMod), only when both are of one build.
// Which GRUB was found decides the menu's dialect: Loaders.Dialect.
// IsLoader tells boot loaders from the files they read (modules).
//
// FindLoaders reads files once, at start-up. Apart from that the package
// does no I/O: it returns bytes, and the caller serves them.
package bootmenu
