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
package pxekit
