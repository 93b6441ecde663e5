package bootmenu

// Step names the part of a network boot that serving a file marks: a boot
// server that logs its clients' progress reports a Step for each file a
// client fetches, without a table of its own.
type Step string

// The steps a file served by a boot server can mark, in boot order.
const (
	StepBootloader Step = "bootloader" // a loader of Loaders: shim, GRUB, pxelinux, iPXE
	StepMenu       Step = "menu"       // a generated menu (see MenuKind)
	StepKernel     Step = "kernel"     // an entry's kernel
	StepInitrd     Step = "initrd"     // one of an entry's initrds
)

// StepOf says which step of a client's network boot serving name (a TFTP
// or HTTP path below the boot server root, as the loaders ask for it)
// marks: a menu by its name (MenuKind), the kernel or an initrd of one of
// entries, or a boot loader of l (IsLoader; a nil l has none). Any other
// name, such as a file of the install tree, marks no step: ok is false.
func StepOf(name string, l *Loaders, entries ...Entry) (step Step, ok bool) {
	if _, menu := MenuKind(name); menu {
		return StepMenu, true
	}
	for _, e := range entries {
		if e.Kernel != "" && name == e.Kernel {
			return StepKernel, true
		}
		for _, i := range e.Initrds {
			if name == i {
				return StepInitrd, true
			}
		}
	}
	if l.IsLoader(name) {
		return StepBootloader, true
	}
	return "", false
}
