package chain

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/bootfiles"
	"github.com/pxekit/pxekit/internal/osid"
	"github.com/pxekit/pxekit/internal/progress"
	"github.com/pxekit/pxekit/isosrc"
)

// Media is where one OS's installer and packages come from, served below
// Prefix of a site's namespace as Prefix+"iso/...", Prefix+"image.iso" and
// Prefix+"boot/...". A site with one OS uses the empty prefix; a fleet
// serves each profile under its own.
type Media struct {
	Prefix  string // "" or "profiles/rocky9/" (with the trailing slash)
	ISO     fs.FS  // may be nil
	ISOFile string // the ISO's path on disk, for Ubuntu's url=
	Netboot fs.FS  // may be nil
}

// BootTree returns the tree that holds the installer kernel and initrd:
// the netboot tree when given, else the ISO.
func (m Media) BootTree() fs.FS {
	if m.Netboot != nil {
		return m.Netboot
	}
	return m.ISO
}

// Lookup resolves a name relative to Prefix ("boot/linux", "iso/x") to the
// tree holding it. image.iso is not a tree: callers serve ISOFile.
func (m Media) Lookup(rel string) (fsys fs.FS, name string, ok bool) {
	if rest, ok := strings.CutPrefix(rel, "boot/"); ok && m.BootTree() != nil {
		return m.BootTree(), rest, true
	}
	if rest, ok := strings.CutPrefix(rel, "iso/"); ok && m.ISO != nil {
		return m.ISO, rest, true
	}
	return nil, "", false
}

// Prepared is an install made concrete for one machine (or for everyone):
// its answer files and its boot entry.
type Prepared struct {
	// Answers maps served names (answerDir + "ks.cfg", ...) to content.
	Answers map[string][]byte
	// AnswerURL is what the boot arguments name.
	AnswerURL string
	// Entry boots the installer with its arguments.
	Entry bootmenu.Entry
	// Stages classifies the served kernel and initrd names for progress.
	Stages map[string]progress.Stage
}

// Prepare renders the answer files for in.Spec, to be served below
// answerDir (e.g. "answer/"), and the boot entry that starts the installer
// from m with them. It checks that the kernel is really there, so that a
// wrong -netboot or ISO is an error at start and not a GRUB message later.
func Prepare(httpBase string, m Media, in Install, answerDir string) (*Prepared, error) {
	info, ok := osid.Lookup(in.OSID)
	if !ok {
		return nil, fmt.Errorf("unknown OS %q", in.OSID)
	}
	if in.Spec == nil {
		return nil, fmt.Errorf("%s: no answer-file spec", info.ID)
	}
	spec := *in.Spec
	kind, err := answerfile.KindFor(info.ID)
	if err != nil {
		return nil, err
	}
	base := httpBase + m.Prefix

	// The install source, by installer family.
	var repo string
	switch info.Family {
	case osid.Anaconda:
		if m.ISO == nil {
			return nil, fmt.Errorf("%s installs from its ISO's tree: give an ISO", info.ID)
		}
		repo = base + "iso/"
	case osid.Subiquity:
		if m.ISOFile == "" {
			return nil, fmt.Errorf("%s's live installer downloads its ISO: give an ISO", info.ID)
		}
		repo = base + "image.iso"
	case osid.DebianDI:
		repo = in.Mirror
		if repo == "" && m.ISO != nil {
			repo = base + "iso/"
		}
		if spec.Mirror == "" {
			spec.Mirror = repo
		}
	}

	p := &Prepared{Answers: map[string][]byte{}, Stages: map[string]progress.Stage{}}
	render := func(name, kind string) error {
		out, err := answerfile.Render(info.ID, kind, &spec)
		if err != nil {
			return fmt.Errorf("answer file: %w", err)
		}
		p.Answers[answerDir+name] = out
		return nil
	}
	switch kind {
	case answerfile.KindKickstart:
		err = render("ks.cfg", kind)
		p.AnswerURL = httpBase + answerDir + "ks.cfg"
	case answerfile.KindPreseed:
		err = render("preseed.cfg", kind)
		p.AnswerURL = httpBase + answerDir + "preseed.cfg"
	case answerfile.KindAutoinstall:
		if err = render("seed/user-data", kind); err == nil {
			err = render("seed/meta-data", answerfile.KindMetaData)
		}
		p.AnswerURL = httpBase + answerDir + "seed/"
	}
	if err != nil {
		return nil, err
	}

	bi, err := BootInput(info.ID, &spec, in, repo, p.AnswerURL)
	if err != nil {
		return nil, err
	}
	entry, err := bootmenu.InstallEntry(info.ID, path.Join(m.Prefix, "boot"), bi)
	if err != nil {
		return nil, err
	}
	if d := in.Distro; d != nil {
		// Detection knows the real paths; the netboot ones win for Debian.
		k, i := d.Kernel, d.Initrd
		if d.NetbootKernel != "" {
			k, i = d.NetbootKernel, d.NetbootInitrd
		}
		if k != "" && i != "" {
			entry.Kernel, entry.Initrds = path.Join(m.Prefix, "boot", k), []string{path.Join(m.Prefix, "boot", i)}
		}
	}
	p.Stages[entry.Kernel] = progress.Kernel
	for _, n := range entry.Initrds {
		p.Stages[n] = progress.Initrd
	}
	tree := m.BootTree()
	if tree == nil {
		return nil, fmt.Errorf("%s: nothing holds the installer kernel %s: give an ISO or a netboot tree", info.ID, entry.Kernel)
	}
	rel := strings.TrimPrefix(entry.Kernel, m.Prefix+"boot/")
	if _, err := fs.Stat(tree, rel); err != nil {
		return nil, fmt.Errorf("%s: the installer kernel %s is not there (%v); for Debian give the netboot tree or netboot.tar.gz", info.ID, rel, err)
	}
	p.Entry = entry
	return p, nil
}

// BootInput is the installer's kernel-line input for spec: what the
// installer must know before it can read its answer file (for d-i, all that
// netcfg asks: hostname, domain, a static address), taken from the spec so
// that no caller patches kernel lines. in supplies the console, the boot
// server's nameservers (used when the spec names none) and extra arguments;
// repoURL and answerURL are the install source and the answer file as the
// menu names them. examples/render calls it with the same spec to print
// the menu that minimal and fleet serve.
func BootInput(osID string, spec *answerfile.Spec, in Install, repoURL, answerURL string) (bootmenu.InstallInput, error) {
	info, ok := osid.Lookup(osID)
	if !ok {
		return bootmenu.InstallInput{}, fmt.Errorf("unknown OS %q", osID)
	}
	bi := bootmenu.InstallInput{RepoURL: repoURL, AnswerURL: answerURL, Console: in.Console, Extra: in.Args}
	for _, a := range in.Nameservers {
		bi.Nameservers = append(bi.Nameservers, a.String())
	}
	if spec == nil {
		return bi, nil
	}
	n := spec.Network
	bi.Hostname, bi.Domain = spec.Hostname, n.Domain
	if h, d, ok := strings.Cut(spec.Hostname, "."); ok {
		bi.Hostname, bi.Domain = h, d
	}
	if n.Mode == "static" {
		pfx, err := netip.ParsePrefix(n.Address)
		if err != nil {
			return bootmenu.InstallInput{}, fmt.Errorf("spec network.address %q: %v", n.Address, err)
		}
		bi.Address = pfx
		if n.Gateway != "" {
			if bi.Gateway, err = netip.ParseAddr(n.Gateway); err != nil {
				return bootmenu.InstallInput{}, fmt.Errorf("spec network.gateway %q: %v", n.Gateway, err)
			}
		}
		if len(n.DNS) > 0 {
			bi.Nameservers = slices.Clone(n.DNS)
		}
		if info.Family != osid.DebianDI {
			// d-i keeps interface=auto (BOOTIF); dracut and ipconfig
			// take the name in ip=.
			bi.Interface = n.Device
		}
	}
	if info.Family == osid.DebianDI {
		// An isolated install network often has no router; d-i would stop
		// to ask whether to go on without one, before reading its preseed.
		bi.NoDefaultRoute = true
	}
	return bi, nil
}

// Dialect picks the GRUB dialect for menus read by the loaders served: the
// host's signed Debian GRUB unless the OS's own GRUB came from its ISO.
func Dialect(loaders *bootfiles.Set, osID string) (bootmenu.GRUBDialect, error) {
	if loaders != nil && loaders.FromISO(bootfiles.GRUB) {
		return bootmenu.DialectFor(osID)
	}
	return bootmenu.GRUBDebian, nil
}

// Menus renders menu for every loader kind.
func Menus(menu *bootmenu.Menu, httpBase string, dialect bootmenu.GRUBDialect) (map[bootmenu.Kind][]byte, error) {
	out := map[bootmenu.Kind][]byte{}
	for _, k := range bootmenu.Kinds() {
		opt := bootmenu.Options{HTTPBase: httpBase, GRUBDialect: dialect, PXELinuxUI: "menu.c32"}
		b, err := bootmenu.Render(menu, k, opt)
		if err != nil {
			return nil, fmt.Errorf("%s menu: %w", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// LoaderSource says where the distribution's own shim and GRUB are. Under
// Secure Boot a shim trusts only its vendor's GRUB, and that GRUB only its
// vendor's kernels, so EL clones and Ubuntu boot the pair from their own ISO
// (EFI/BOOT/BOOTX64.EFI and grubx64.efi): the host's Debian-signed GRUB
// would refuse Canonical's kernel. Debian alone prefers the host's signed
// network GRUB, which is the same vendor's and, unlike the ISO's CD-ROM
// GRUB, is built to read its menu over TFTP.
func LoaderSource(iso *isosrc.Image, d *isosrc.Distro, log *slog.Logger) bootfiles.Source {
	if iso == nil || d == nil {
		return bootfiles.Source{}
	}
	src := bootfiles.Source{FS: iso, Shim: d.Shim, GRUB: d.GRUB, PreferHost: preferHostLoaders(d.Family)}
	if d.EFISource == isosrc.EFIFromElTorito {
		efi, err := iso.EFIFS()
		if err != nil {
			log.Warn("iso", "efi image", err)
			return bootfiles.Source{PreferHost: true}
		}
		src.FS = efi
	}
	return src
}

// preferHostLoaders reports whether the host's signed network GRUB should
// boot an installer of the family: only for Debian's own, whose vendor
// signed it.
func preferHostLoaders(family string) bool { return family == string(osid.DebianDI) }
