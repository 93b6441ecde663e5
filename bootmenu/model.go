package bootmenu

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors; every error returned by this package wraps one of them,
// so callers can tell bad input from an unknown OS with errors.Is.
var (
	// ErrInvalid means the menu, an entry or an input is malformed (missing
	// kernel, duplicate ID, bad path, unknown kind...).
	ErrInvalid = errors.New("bootmenu: invalid menu")
	// ErrUnsafe means a value cannot be written for a loader without
	// changing the meaning of the file (a newline, NUL, a quote the kernel
	// cannot carry, "${" for iPXE...). It is never silently dropped.
	ErrUnsafe = errors.New("bootmenu: value cannot be rendered safely")
	// ErrUnknownOS means the OS identifier is not in the table.
	ErrUnknownOS = errors.New("bootmenu: unknown OS identifier")
)

// Kind names a boot loader dialect.
type Kind string

// The loaders this package renders for.
const (
	GRUB     Kind = "grub"     // GRUB 2 grub.cfg, UEFI
	PXELinux Kind = "pxelinux" // pxelinux.cfg/* for BIOS
	IPXE     Kind = "ipxe"     // iPXE script
)

// Kinds lists every renderer, in a stable order.
func Kinds() []Kind { return []Kind{GRUB, PXELinux, IPXE} }

// ParseKind turns a command-line word ("grub", "pxelinux", "ipxe") into a
// Kind, so flags can be validated in one place.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case GRUB, PXELinux, IPXE:
		return k, nil
	}
	return "", fmt.Errorf("%w: unknown loader kind %q (want grub, pxelinux or ipxe)", ErrInvalid, s)
}

// ArgKind says how an Arg is written on the kernel command line.
type ArgKind int

const (
	// ArgKV is key=value; the value is data and is quoted per loader.
	ArgKV ArgKind = iota
	// ArgFlag is a bare word such as "autoinstall" or "quiet".
	ArgFlag
	// ArgBootIF is BOOTIF=01-aa-bb-cc-dd-ee-ff for the NIC the loader
	// booted from, filled in by the loader at boot time: GRUB from
	// $net_default_mac, iPXE from ${netX/mac:hexhyp}, pxelinux by IPAPPEND 2.
	// Installers (dracut/anaconda, d-i, initramfs-tools) then configure
	// that NIC instead of guessing on multi-NIC servers.
	ArgBootIF
)

// Arg is one kernel command-line argument. Use KV, Flag and BootIF to build
// them.
type Arg struct {
	Kind  ArgKind
	Key   string // the key, or the word itself for ArgFlag
	Value string // ArgKV only; any printable text, quoted when rendered
}

// KV returns the argument key=value.
func KV(key, value string) Arg { return Arg{Kind: ArgKV, Key: key, Value: value} }

// Flag returns a bare-word argument.
func Flag(word string) Arg { return Arg{Kind: ArgFlag, Key: word} }

// BootIF returns the argument naming the boot NIC, resolved by the loader.
func BootIF() Arg { return Arg{Kind: ArgBootIF, Key: "BOOTIF"} }

// String renders the argument as the kernel will see it (no loader
// quoting); BootIF shows a placeholder.
func (a Arg) String() string {
	switch a.Kind {
	case ArgFlag:
		return a.Key
	case ArgBootIF:
		return "BOOTIF=01-<boot-mac>"
	}
	if strings.ContainsAny(a.Value, " \t") {
		return a.Key + `="` + a.Value + `"`
	}
	return a.Key + "=" + a.Value
}

// LocalBoot selects how an entry hands the machine back to its disk.
type LocalBoot int

const (
	// NotLocal is an ordinary kernel entry.
	NotLocal LocalBoot = iota
	// LocalExit leaves the loader so the firmware tries the next boot
	// option (GRUB and iPXE "exit", pxelinux "LOCALBOOT 0"). SeaBIOS then
	// boots the disk, but OVMF answers GRUB's exit by opening its setup
	// page and waiting for a key (seen on real firmware): prefer
	// LocalChainload for UEFI.
	LocalExit
	// LocalChainload makes GRUB look for an EFI loader on the disks
	// (\EFI\<vendor>\shimx64.efi, grubx64.efi, then \EFI\BOOT\BOOTX64.EFI),
	// set root to that partition and chainload it, falling back to exit
	// when no disk has one. The shim found first keeps Secure Boot
	// intact. Other loaders (pxelinux, iPXE) treat it as LocalExit.
	LocalChainload
)

// Entry is one menu item: either a kernel to boot or a local-boot item.
type Entry struct {
	// ID names the entry in the loader (GRUB --id, pxelinux LABEL, iPXE
	// label). Letters, digits, '-', '_' and '.'; required.
	ID string
	// Title is the text shown in the menu; defaults to ID.
	Title string
	// Kernel is the kernel path relative to the boot server root (TFTP
	// root, and the HTTP base when one is given), e.g.
	// "rocky-9.0/images/pxeboot/vmlinuz". Required unless Local is set.
	Kernel string
	// Initrds are loaded in order, same path rules as Kernel.
	Initrds []string
	// Args are the kernel arguments in order.
	Args []Arg
	// Local makes this a local-boot entry; Kernel, Initrds and Args must
	// then be empty.
	Local LocalBoot
	// GRUBCommands, PXELinuxLines and IPXECommands are extra loader lines
	// written verbatim before the kernel is loaded (GRUB: inside the
	// menuentry; pxelinux: inside the LABEL; iPXE: after the label). They
	// are trusted operator input: only newlines and NULs are rejected.
	GRUBCommands  []string
	PXELinuxLines []string
	IPXECommands  []string
}

// Menu is a complete boot menu for one loader file.
type Menu struct {
	// Title is shown above the entries; defaults to "pxekit".
	Title string
	// Timeout is how long the menu waits before booting Default. Zero
	// boots the default at once; negative waits forever.
	Timeout time.Duration
	// Default is the ID of the entry booted on timeout; empty means the
	// first entry.
	Default string
	// Entries in display order; at least one.
	Entries []Entry
}

func isIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// isKeyChar covers kernel parameter names such as inst.ks,
// netcfg/get_nameservers and keyboard-configuration/xkb-keymap.
func isKeyChar(r rune) bool { return isIDChar(r) || r == '/' || r == ':' }

func isPathChar(r rune) bool { return isIDChar(r) || r == '/' || r == '+' || r == '~' }

func checkWord(what, s string, ok func(rune) bool) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	for _, r := range s {
		if !ok(r) {
			return fmt.Errorf("%w: %s %q contains %q", ErrInvalid, what, s, r)
		}
	}
	return nil
}

// checkText rejects what no loader can carry on one line.
func checkText(what, s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == 0xfffd {
			return fmt.Errorf("%w: %s %q contains control character %U", ErrUnsafe, what, s, r)
		}
	}
	return nil
}

func checkPath(what, p string) error {
	if err := checkWord(what, p, isPathChar); err != nil {
		return err
	}
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == ".." {
			return fmt.Errorf("%w: %s %q leaves the server root", ErrInvalid, what, p)
		}
	}
	return nil
}

// Validate checks the argument against the rules common to all loaders:
// the kernel splits its command line at spaces and honours double quotes
// only, so a value may hold spaces but not a double quote, and nothing may
// hold a control character.
func (a Arg) Validate() error {
	switch a.Kind {
	case ArgFlag, ArgBootIF:
		return checkWord("argument", a.Key, isKeyChar)
	case ArgKV:
		if err := checkWord("argument key", a.Key, isKeyChar); err != nil {
			return err
		}
		if err := checkText("value of "+a.Key, a.Value); err != nil {
			return err
		}
		if strings.ContainsRune(a.Value, '"') {
			return fmt.Errorf("%w: value of %s %q contains a double quote, which the kernel command line cannot carry", ErrUnsafe, a.Key, a.Value)
		}
		return nil
	}
	return fmt.Errorf("%w: argument %q has unknown kind %d", ErrInvalid, a.Key, a.Kind)
}

// Validate checks the entry's own fields; loader-specific limits are checked
// when rendering.
func (e *Entry) Validate() error {
	if err := checkWord("entry ID", e.ID, isIDChar); err != nil {
		return err
	}
	if c := e.ID[0]; c == '-' || c == '.' || c == '_' {
		return fmt.Errorf("%w: entry ID %q must start with a letter or digit", ErrInvalid, e.ID)
	}
	if err := checkText("title of "+e.ID, e.Title); err != nil {
		return err
	}
	for _, lines := range [][]string{e.GRUBCommands, e.PXELinuxLines, e.IPXECommands} {
		for _, l := range lines {
			if strings.ContainsAny(l, "\n\r\x00") {
				return fmt.Errorf("%w: extra loader line %q of %s contains a line break or NUL", ErrUnsafe, l, e.ID)
			}
		}
	}
	switch e.Local {
	case NotLocal:
	case LocalExit, LocalChainload:
		if e.Kernel != "" || len(e.Initrds) > 0 || len(e.Args) > 0 {
			return fmt.Errorf("%w: local-boot entry %s has a kernel, initrds or arguments", ErrInvalid, e.ID)
		}
		return nil
	default:
		return fmt.Errorf("%w: entry %s has unknown local-boot mode %d", ErrInvalid, e.ID, e.Local)
	}
	if err := checkPath("kernel path of "+e.ID, e.Kernel); err != nil {
		return err
	}
	for _, p := range e.Initrds {
		if err := checkPath("initrd path of "+e.ID, p); err != nil {
			return err
		}
	}
	for _, a := range e.Args {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the menu and every entry.
func (m *Menu) Validate() error {
	if m == nil || len(m.Entries) == 0 {
		return fmt.Errorf("%w: menu has no entries", ErrInvalid)
	}
	if err := checkText("menu title", m.Title); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := e.Validate(); err != nil {
			return err
		}
		if seen[e.ID] {
			return fmt.Errorf("%w: duplicate entry ID %q", ErrInvalid, e.ID)
		}
		seen[e.ID] = true
	}
	if m.Default != "" && !seen[m.Default] {
		return fmt.Errorf("%w: default entry %q is not in the menu", ErrInvalid, m.Default)
	}
	return nil
}

func (m *Menu) title() string {
	if m.Title == "" {
		return "pxekit"
	}
	return m.Title
}

// hasKernel reports whether an entry loads a kernel (is not local).
func (m *Menu) hasKernel() bool {
	for i := range m.Entries {
		if m.Entries[i].Local == NotLocal {
			return true
		}
	}
	return false
}

func (m *Menu) defaultID() string {
	if m.Default != "" {
		return m.Default
	}
	return m.Entries[0].ID
}

func (e *Entry) title() string {
	if e.Title == "" {
		return e.ID
	}
	return e.Title
}

// ParseArgs reads kernel arguments as an operator writes them on a command
// line ("no_timer_check nomodeset vga=791"): words separated by white
// space, each a flag, or key=value split at the first '='. There is no
// quoting, so a value cannot hold a space here (build such an Arg with
// KV), and no quote or backslash, which not every loader can pass on (iPXE
// cannot). Every argument is checked as Validate checks it; the error
// names the word.
func ParseArgs(s string) ([]Arg, error) {
	var out []Arg
	for _, w := range strings.Fields(s) {
		if i := strings.IndexAny(w, `"'\`); i >= 0 {
			return nil, fmt.Errorf("%w: kernel argument %q contains %q, which not every loader can pass on", ErrUnsafe, w, w[i])
		}
		a := Flag(w)
		if k, v, ok := strings.Cut(w, "="); ok {
			a = KV(k, v)
		}
		if err := a.Validate(); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
