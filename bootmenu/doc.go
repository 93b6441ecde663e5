// Package bootmenu renders boot-loader menus from a typed model: grub.cfg for
// UEFI, pxelinux for BIOS, and iPXE scripts. Kernel arguments are data, quoted
// for each loader, so an argument such as ds=nocloud-net;s=http://host/ cannot
// be cut at the semicolon by GRUB. It also knows the file names each loader
// searches per host, and the install arguments each installer needs.
//
// Sketch:
//
//	m := bootmenu.Menu{Title: "Install", Entries: []bootmenu.Entry{...}}
//	cfg, err := bootmenu.RenderGRUB(m)
package bootmenu
