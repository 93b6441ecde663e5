package bootmenu

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
	"time"
)

// Options says where the files live and which loader build will read the
// result. The zero value renders TFTP paths for a current GRUB.
type Options struct {
	// HTTPBase, when set, is the HTTP URL of the boot server root, e.g.
	// "http://10.0.0.1:8080/" or "http://10.0.0.1/boot/". Loaders that can
	// fetch over HTTP (iPXE; GRUB when its Dialect has HTTP, or HTTPInsmod
	// and the module loads) then load kernel and initrds from
	// HTTPBase+path, because TFTP is lock-step and slow for 100 MB
	// initrds. pxelinux always uses TFTP. Default: TFTP everywhere.
	HTTPBase string
	// GRUBDialect describes the GRUB build that will read a grub.cfg. The
	// zero value is a current GRUB (2.06+, Debian's and Ubuntu's signed
	// images): linux/initrd, TFTP only. Use DialectFor to pick the one
	// shipped by a distribution's ISO.
	GRUBDialect GRUBDialect
	// PXELinuxUI is the pxelinux menu module ("menu.c32" or "vesamenu.c32").
	// Default "": a plain pxelinux.cfg with a boot: prompt and no menu.
	PXELinuxUI string
}

// Render writes menu m for loader k. Every value is validated and quoted
// for that loader; an argument that cannot be carried safely is an error
// wrapping ErrUnsafe, never a silently altered file.
func Render(m *Menu, k Kind, opt Options) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	base, err := parseHTTPBase(opt.HTTPBase)
	if err != nil {
		return nil, err
	}
	switch k {
	case GRUB:
		return renderGRUB(m, opt.GRUBDialect, base)
	case PXELinux:
		return renderPXELinux(m, opt.PXELinuxUI)
	case IPXE:
		return renderIPXE(m, base)
	}
	return nil, fmt.Errorf("%w: unknown loader kind %q", ErrInvalid, k)
}

// Menus holds one rendered menu per loader kind.
type Menus map[Kind][]byte

// Lookup returns the menu a loader asks for by served name (see MenuKind):
// any ".../grub.cfg" or "grub.cfg-...", "pxelinux.cfg/..." or "boot.ipxe".
func (m Menus) Lookup(name string) ([]byte, bool) {
	k, ok := MenuKind(name)
	if !ok || m[k] == nil {
		return nil, false
	}
	return m[k], true
}

// RenderAll renders m for every loader in Kinds with the same options, so
// that whichever loader a client runs finds the same menu. The error names
// the loader whose rendering failed.
func RenderAll(m *Menu, opt Options) (Menus, error) {
	out := make(Menus, len(Kinds()))
	for _, k := range Kinds() {
		b, err := Render(m, k, opt)
		if err != nil {
			return nil, fmt.Errorf("%s menu: %w", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// httpBase is a validated HTTP root.
type httpBase struct {
	host string // host name or address, IPv6 without brackets
	port string // "" for 80
	path string // "/" or "/dir/"
}

func parseHTTPBase(s string) (*httpBase, error) {
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: HTTP base %q: %v", ErrInvalid, s, err)
	}
	if u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: HTTP base %q must be http://host[:port]/[path/] without user, query or fragment", ErrInvalid, s)
	}
	b := &httpBase{host: u.Hostname(), port: u.Port(), path: "/"}
	if err := checkWord("HTTP host", b.host, func(r rune) bool { return isIDChar(r) || r == ':' }); err != nil {
		return nil, err
	}
	if b.port == "80" {
		b.port = ""
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := checkPath("HTTP base path", p); err != nil {
			return nil, err
		}
		b.path = "/" + p + "/"
	}
	return b, nil
}

// url returns the full URL of a root-relative path.
func (b *httpBase) url(p string) string {
	host := b.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if b.port != "" {
		host = net.JoinHostPort(b.host, b.port)
	}
	return "http://" + host + b.path + strings.TrimLeft(p, "/")
}

func seconds(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int((d + time.Second - 1) / time.Second)
}

// ---------------------------------------------------------------- GRUB

// grubSafe are the bytes GRUB's lexer takes literally outside quotes. '*',
// '?', '[' are excluded because the wildcard module globs them.
func grubSafe(r rune) bool {
	return isIDChar(r) || strings.ContainsRune("/:,=+@%", r)
}

// grubQuote returns s as one GRUB word with no expansion: as is when every
// byte is literal, otherwise single-quoted (a single quote becomes '\”).
func grubQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !grubSafe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const grubBootIFVars = 6

// grubBootIF converts GRUB's colon-separated $net_default_mac into the
// dash-separated form d-i and dracut expect in BOOTIF.
func grubBootIF(b *bytes.Buffer) {
	b.WriteString("\tregexp")
	for i := 1; i <= grubBootIFVars; i++ {
		fmt.Fprintf(b, " --set=%d:bootif_%d", i, i)
	}
	b.WriteString(" '^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})$' \"$net_default_mac\"\n")
}

const grubBootIFArg = `"BOOTIF=01-${bootif_1}-${bootif_2}-${bootif_3}-${bootif_4}-${bootif_5}-${bootif_6}"`

// grubChainloadCandidates are EFI loaders tried, in order, for
// LocalChainload: the installed distributions' shims first (Secure Boot),
// then their GRUBs, then the removable-media paths (x64, AArch64).
var grubChainloadCandidates = []string{
	"/EFI/redhat/shimx64.efi", "/EFI/centos/shimx64.efi", "/EFI/rocky/shimx64.efi",
	"/EFI/almalinux/shimx64.efi", "/EFI/openEuler/shimx64.efi", "/EFI/kylin/shimx64.efi",
	"/EFI/uos/shimx64.efi", "/EFI/ubuntu/shimx64.efi", "/EFI/debian/shimx64.efi",
	"/EFI/redhat/grubx64.efi", "/EFI/centos/grubx64.efi", "/EFI/ubuntu/grubx64.efi",
	"/EFI/debian/grubx64.efi", "/EFI/BOOT/BOOTX64.EFI", "/EFI/BOOT/BOOTAA64.EFI",
}

// grubHTTPVar holds the HTTP root in menus for GRUBs that load the http
// module at boot (GRUBDialect.HTTPInsmod); empty when the module did not
// load.
const grubHTTPVar = "pxekit_http"

func renderGRUB(m *Menu, d GRUBDialect, base *httpBase) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by pxekit bootmenu for GRUB")
	if d.Name != "" {
		b.WriteString(" (" + d.Name + ")")
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "set timeout=%d\n", seconds(m.Timeout))
	fmt.Fprintf(&b, "set default=%s\n", grubQuote(m.defaultID()))
	linux, initrd := "linux", "initrd"
	if d.LinuxEFI {
		linux, initrd = "linuxefi", "initrdefi"
	}
	// The device prefix for files: "" is $root, the TFTP server GRUB
	// was loaded from.
	dev, dir := "", ""
	usable := base != nil && (base.port == "" || d.HTTPPort) && (!strings.Contains(base.host, ":") || d.HTTPPort)
	if usable && (d.HTTP || d.HTTPInsmod) {
		host := base.host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if base.port != "" {
			host += ":" + base.port
		}
		dev, dir = "(http,"+host+")", strings.TrimSuffix(base.path, "/")
	}
	// dev is built from validated host and path characters only.
	file := func(p string) string { return dev + grubQuote(dir+"/"+strings.TrimLeft(p, "/")) }
	if dev != "" && !d.HTTP && m.hasKernel() {
		// GRUB 2.06's insmod returns success even when the module was
		// refused, so "if insmod http" cannot be the test. Opening an
		// (http,...) device loads the module from $prefix first, quietly,
		// and fails when it could not (Secure Boot, no module on the
		// server); test -d on the device's root sends nothing over the
		// network. The variable then names the HTTP root, and stays empty
		// otherwise, leaving the TFTP paths of $root. Its name cannot
		// meet one of GRUB's own variables.
		b.WriteString("\n# HTTP when GRUB can load its http module (not under Secure Boot), else TFTP.\n")
		fmt.Fprintf(&b, "set %s=\nif test -d %s; then\n\tset %s=%s\nfi\n", grubHTTPVar, grubQuote(dev+"/"), grubHTTPVar, grubQuote(dev+dir))
		file = func(p string) string {
			return `"${` + grubHTTPVar + `}"` + grubQuote("/"+strings.TrimLeft(p, "/"))
		}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		fmt.Fprintf(&b, "\nmenuentry %s --id %s {\n", grubQuote(e.title()), grubQuote(e.ID))
		for _, l := range e.GRUBCommands {
			b.WriteString("\t" + l + "\n")
		}
		switch e.Local {
		case LocalExit:
			b.WriteString("\texit\n}\n")
			continue
		case LocalChainload:
			b.WriteString("\tinsmod part_gpt\n\tinsmod fat\n\tinsmod chain\n")
			b.WriteString("\tfor efi in")
			for _, c := range grubChainloadCandidates {
				b.WriteString(" " + c)
			}
			b.WriteString("; do\n")
			b.WriteString("\t\tif search --no-floppy --file --set=esp \"$efi\"; then\n")
			// GRUB 2.06 gives the chainloaded image its device path
			// from $root, not from the file's device: left on the TFTP
			// server, the disk's shim cannot open its own directory.
			b.WriteString("\t\t\tset root=\"$esp\"\n")
			b.WriteString("\t\t\tchainloader \"($esp)$efi\"\n\t\t\tboot\n\t\tfi\n\tdone\n")
			b.WriteString("\techo 'No EFI loader found on the disks; leaving GRUB.'\n\texit\n}\n")
			continue
		}
		words := []string{linux, file(e.Kernel)}
		for _, a := range e.Args {
			switch a.Kind {
			case ArgBootIF:
				grubBootIF(&b)
				words = append(words, grubBootIFArg)
			case ArgFlag:
				words = append(words, grubQuote(a.Key))
			default:
				words = append(words, grubQuote(a.Key+"="+a.Value))
			}
		}
		fmt.Fprintf(&b, "\techo %s\n", grubQuote("Loading "+e.Kernel+" ..."))
		b.WriteString("\t" + strings.Join(words, " ") + "\n")
		if len(e.Initrds) > 0 {
			words = []string{initrd}
			for _, p := range e.Initrds {
				words = append(words, file(p))
			}
			fmt.Fprintf(&b, "\techo %s\n", grubQuote("Loading "+strings.Join(e.Initrds, " ")+" ..."))
			b.WriteString("\t" + strings.Join(words, " ") + "\n")
		}
		b.WriteString("}\n")
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------- pxelinux

// pxeArg writes an argument for a pxelinux APPEND line, which is passed to
// the kernel verbatim: only the kernel's own double quoting applies.
func kernelWord(a Arg) string {
	if a.Kind == ArgFlag {
		return a.Key
	}
	if strings.ContainsAny(a.Value, " ") {
		return a.Key + `="` + a.Value + `"`
	}
	return a.Key + "=" + a.Value
}

func renderPXELinux(m *Menu, ui string) ([]byte, error) {
	if ui != "" {
		if err := checkWord("pxelinux UI module", ui, isIDChar); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	b.WriteString("# Generated by pxekit bootmenu for pxelinux.\n")
	t := m.Timeout
	switch {
	case ui != "":
		b.WriteString("UI " + ui + "\nPROMPT 0\n")
		fmt.Fprintf(&b, "MENU TITLE %s\n", m.title())
		switch {
		case t < 0:
			b.WriteString("TIMEOUT 0\n")
		case t == 0:
			b.WriteString("TIMEOUT 1\n") // 0 would mean "wait forever"
		default:
			fmt.Fprintf(&b, "TIMEOUT %d\n", (t+99*time.Millisecond)/(100*time.Millisecond))
		}
	case t == 0:
		b.WriteString("PROMPT 0\n")
	case t < 0:
		b.WriteString("PROMPT 1\nTIMEOUT 0\n")
	default:
		fmt.Fprintf(&b, "PROMPT 1\nTIMEOUT %d\n", (t+99*time.Millisecond)/(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "DEFAULT %s\n", m.defaultID())
	for i := range m.Entries {
		e := &m.Entries[i]
		fmt.Fprintf(&b, "\nLABEL %s\n", e.ID)
		if ui != "" {
			fmt.Fprintf(&b, "  MENU LABEL %s\n", e.title())
		}
		for _, l := range e.PXELinuxLines {
			b.WriteString("  " + l + "\n")
		}
		if e.Local != NotLocal {
			b.WriteString("  LOCALBOOT 0\n")
			continue
		}
		fmt.Fprintf(&b, "  KERNEL %s\n", strings.TrimLeft(e.Kernel, "/"))
		if len(e.Initrds) > 0 {
			ps := make([]string, len(e.Initrds))
			for i, p := range e.Initrds {
				ps[i] = strings.TrimLeft(p, "/")
			}
			fmt.Fprintf(&b, "  INITRD %s\n", strings.Join(ps, ","))
		}
		var words []string
		bootif := false
		for _, a := range e.Args {
			if a.Kind == ArgBootIF {
				bootif = true
				continue
			}
			words = append(words, kernelWord(a))
		}
		if len(words) > 0 {
			fmt.Fprintf(&b, "  APPEND %s\n", strings.Join(words, " "))
		}
		if bootif {
			// IPAPPEND 2 appends BOOTIF=01-aa-bb-cc-dd-ee-ff of the boot NIC.
			b.WriteString("  IPAPPEND 2\n")
		}
	}
	return b.Bytes(), nil
}

// ---------------------------------------------------------------- iPXE

// ipxeText checks text written where iPXE expands ${...} and splits words:
// no expansion, and no word that iPXE would read as an operator or option.
func ipxeText(what, s string) error {
	if strings.Contains(s, "${") {
		return fmt.Errorf("%w: %s %q contains \"${\", which iPXE would expand", ErrUnsafe, what, s)
	}
	for _, w := range strings.Fields(s) {
		if w == "||" || w == "&&" || strings.HasPrefix(w, "#") {
			return fmt.Errorf("%w: %s %q contains %q, which iPXE would read as script syntax", ErrUnsafe, what, s, w)
		}
	}
	if strings.HasPrefix(s, "-") {
		return fmt.Errorf("%w: %s %q starts with '-', which iPXE would read as an option", ErrUnsafe, what, s)
	}
	return nil
}

func ipxeArg(a Arg) (string, error) {
	switch a.Kind {
	case ArgFlag:
		return a.Key, nil
	case ArgBootIF:
		return a.Key + "=01-${netX/mac:hexhyp}", nil
	}
	if strings.ContainsAny(a.Value, " '\\") {
		return "", fmt.Errorf("%w: value of %s %q: iPXE cannot pass a space, quote or backslash inside a kernel argument", ErrUnsafe, a.Key, a.Value)
	}
	if strings.Contains(a.Value, "${") {
		return "", fmt.Errorf("%w: value of %s %q contains \"${\", which iPXE would expand", ErrUnsafe, a.Key, a.Value)
	}
	return a.Key + "=" + a.Value, nil
}

func renderIPXE(m *Menu, base *httpBase) ([]byte, error) {
	if err := ipxeText("menu title", m.title()); err != nil {
		return nil, err
	}
	file := func(p string) string {
		if base != nil {
			return base.url(p)
		}
		return "/" + strings.TrimLeft(p, "/") // resolved against the script's own TFTP URL
	}
	var b bytes.Buffer
	b.WriteString("#!ipxe\n# Generated by pxekit bootmenu for iPXE.\n")
	def := m.defaultID()
	if m.Timeout == 0 {
		fmt.Fprintf(&b, "goto %s\n", def)
	} else {
		fmt.Fprintf(&b, "menu %s\n", m.title())
		for i := range m.Entries {
			e := &m.Entries[i]
			if err := ipxeText("title of "+e.ID, e.title()); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "item %s %s\n", e.ID, e.title())
		}
		timeout := ""
		if m.Timeout > 0 {
			timeout = fmt.Sprintf(" --timeout %d", m.Timeout.Milliseconds())
		}
		fmt.Fprintf(&b, "choose --default %s%s selected || goto %s\n", def, timeout, def)
		b.WriteString("goto ${selected}\n")
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		fmt.Fprintf(&b, "\n:%s\n", e.ID)
		for _, l := range e.IPXECommands {
			b.WriteString(l + "\n")
		}
		if e.Local != NotLocal {
			b.WriteString("exit\n")
			continue
		}
		words := []string{"kernel", file(e.Kernel)}
		names := map[string]bool{}
		for _, p := range e.Initrds {
			n := path.Base(p)
			if names[n] {
				return nil, fmt.Errorf("%w: entry %s: two initrds named %q; iPXE registers initrds by base name", ErrInvalid, e.ID, n)
			}
			names[n] = true
			// The EFI stub finds iPXE's initrds by these names.
			words = append(words, "initrd="+n)
		}
		for _, a := range e.Args {
			w, err := ipxeArg(a)
			if err != nil {
				return nil, err
			}
			words = append(words, w)
		}
		b.WriteString(strings.Join(words, " ") + "\n")
		for _, p := range e.Initrds {
			fmt.Fprintf(&b, "initrd --name %s %s\n", path.Base(p), file(p))
		}
		b.WriteString("boot\n")
	}
	return b.Bytes(), nil
}
