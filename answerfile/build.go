package answerfile

import (
	"fmt"
	"github.com/pxekit/pxekit/internal/instnet"
	"net/netip"
	"strings"

	"github.com/pxekit/pxekit/internal/osid"
)

// Set is everything one install serves from its answer directory, and what
// the installer's kernel line must say to find it.
type Set struct {
	// Kind is the format the OS's installer reads.
	Kind Kind
	// Files maps names relative to the answer directory to their content:
	// "ks.cfg" (kickstart), "preseed.cfg" (preseed), or "seed/user-data"
	// and "seed/meta-data" (autoinstall: the NoCloud seed, both files in
	// one directory).
	Files map[string][]byte
	// URL is the answer location the kernel line must name: base+"ks.cfg",
	// base+"preseed.cfg", or the seed directory base+"seed/" (NoCloud
	// appends the file names itself).
	URL string
	// Installer is what the installer must know before it can fetch URL.
	Installer InstallerNet
}

// InstallerNet is the network set-up an installer needs before it can read
// its answer file, taken from the spec so that the kernel line and the
// answer file never disagree: Debian's installer in particular asks for
// its hostname, domain and any static address before it reads the preseed.
// It is the type bootmenu.InstallInput embeds, so a composer hands it over
// whole: bootmenu.InstallInput{InstallerNet: set.Installer, ...}. Build
// fills in Hostname and Domain (the spec's hostname up to its first dot,
// the rest of an FQDN or network.domain), a static spec's Address,
// Gateway, Nameservers and Interface (never an Interface for Debian, whose
// installer follows BOOTIF), NoDefaultRoute for Debian, and Offline.
type InstallerNet = instnet.Net

// Build validates s for the OS and renders every file its installer reads,
// to be served below base (an absolute URL ending in "/", such as
// "http://10.0.0.1:8080/answer/"), with a zero Renderer. s is not modified.
func Build(osID string, s *Spec, base string) (*Set, error) {
	var r Renderer
	return r.Build(osID, s, base)
}

// Build is the package-level Build with r's salt source and logger.
func (r *Renderer) Build(osID string, s *Spec, base string) (*Set, error) {
	kind, err := KindFor(osID)
	if err != nil {
		return nil, err
	}
	pl, err := r.prepare(osID, kind, s)
	if err != nil {
		return nil, err
	}
	in, err := installerNet(pl.info, s)
	if err != nil {
		return nil, err
	}
	set := &Set{Kind: kind, Files: map[string][]byte{}, Installer: in}
	add := func(name string, k Kind) error {
		out, err := r.renderPlan(pl, k)
		if err != nil {
			return err
		}
		set.Files[name] = out
		return nil
	}
	switch kind {
	case KindKickstart:
		err = add("ks.cfg", kind)
		set.URL = base + "ks.cfg"
	case KindPreseed:
		err = add("preseed.cfg", kind)
		set.URL = base + "preseed.cfg"
	case KindAutoinstall:
		if err = add("seed/user-data", kind); err == nil {
			err = add("seed/meta-data", kindMetaData)
		}
		set.URL = base + "seed/"
	}
	if err != nil {
		return nil, err
	}
	return set, nil
}

// installerNet derives the installer's network set-up from a validated
// spec; a parse error here means validation missed something.
func installerNet(info osid.Info, s *Spec) (InstallerNet, error) {
	n := s.Network
	in := InstallerNet{Hostname: s.Hostname, Domain: n.Domain, Offline: s.Offline}
	if h, d, ok := strings.Cut(s.Hostname, "."); ok {
		in.Hostname, in.Domain = h, d
	}
	if n.Mode == "static" {
		var err error
		if in.Address, err = netip.ParsePrefix(n.Address); err != nil {
			return InstallerNet{}, fmt.Errorf("%w: network.address %q: %v", ErrInvalidSpec, n.Address, err)
		}
		if n.Gateway != "" {
			if in.Gateway, err = netip.ParseAddr(n.Gateway); err != nil {
				return InstallerNet{}, fmt.Errorf("%w: network.gateway %q: %v", ErrInvalidSpec, n.Gateway, err)
			}
		}
		for i, d := range n.DNS {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return InstallerNet{}, fmt.Errorf("%w: network.dns[%d] %q: %v", ErrInvalidSpec, i, d, err)
			}
			in.Nameservers = append(in.Nameservers, a)
		}
		if info.Family != osid.DebianDI {
			in.Interface = n.Device
		}
	}
	if info.Family == osid.DebianDI {
		in.NoDefaultRoute = true
	}
	return in, nil
}
