// Package pxekit installs operating systems on racks of bare-metal servers
// over the network, unattended. It is a set of independent Go packages, each
// owning one step of the boot chain, plus small example programs that compose
// them. Import the packages into your own tooling, or run an example as-is.
//
// The boot chain, and the package that serves each step:
//
//  1. Power on. The NIC's firmware (UEFI, or a BIOS PXE/iPXE option ROM)
//     broadcasts a DHCPDISCOVER naming its architecture (option 93).
//  2. dhcpsrv answers, as a full DHCP server or as proxyDHCP next to the
//     network's own, with the boot file for that architecture: shim/GRUB for
//     UEFI, pxelinux for BIOS, an HTTP script URL for iPXE, an absolute URL for
//     UEFI HTTP boot.
//  3. tftpsrv serves the boot loader (read-only, from any io/fs.FS: a
//     directory, an ISO image, an embed.FS) and files generated per request.
//  4. The loader reads its menu. bootmenu renders grub.cfg (UEFI), pxelinux
//     (BIOS) and iPXE scripts, per host, with the installer's kernel arguments
//     quoted correctly for each loader.
//  5. The loader fetches the kernel and initrd — over HTTP where it can,
//     because TFTP is lock-step and slow. isosrc serves them, and the whole
//     install tree, straight out of the distribution's ISO file: no loop
//     mount, no copying, no root.
//  6. The installer (anaconda, subiquity or debian-installer) fetches its
//     answer file over HTTP. answerfile renders kickstart, Ubuntu autoinstall
//     and Debian preseed from one typed, validated spec.
//  7. The installer installs, runs the post-install steps and calls back to
//     report that it is done, so the next PXE boot of that host boots locally.
//
// The packages never import one another; examples/minimal shows how they fit
// together for one OS, examples/fleet for a rack of hosts with per-host menus
// and an install-once gate.
//
// Start with this package's Example: one function that builds a proxyDHCP,
// TFTP and HTTP install server for one ISO from the five packages, and stops
// before it listens. On the way it meets isosrc.OpenMedia, whose isosrc.Media
// serves the ISO's files over HTTP; answerfile.Build, whose answerfile.Set
// holds the answer files, the URL the kernel line names and the network the
// installer needs before it reads them; bootmenu.FindLoaders, whose
// bootmenu.Loaders is the tree of boot loaders to serve; bootmenu.InstallEntry,
// which turns the Set and the ISO's kernel into a menu entry, and
// bootmenu.RenderAll, which writes the menu for GRUB, pxelinux and iPXE;
// tftpsrv.ServeMux, which routes each name a loader asks for to a menu, the
// kernel or a loader; and dhcpsrv.BootTable, which tells each client which
// loader to fetch. Menus and answers per host add dhcpsrv.Bindings, which ties
// the address of a TFTP or HTTP request to a MAC address.
package pxekit
