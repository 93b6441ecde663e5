package isosrc

import "github.com/pxekit/pxekit/internal/osid"

// Family is the installer program a distribution uses (Distro.Family); it
// decides the answer-file format, the kernel arguments and where the
// installer takes its packages from (Media.RepoURL). It is the same type in
// answerfile and bootmenu, so a Family read here can be passed there.
type Family = osid.Family

// Installer families.
const (
	FamilyAnaconda        Family = osid.Anaconda  // kickstart; packages from the ISO's tree
	FamilySubiquity       Family = osid.Subiquity // Ubuntu autoinstall; the live initrd downloads the ISO
	FamilyDebianInstaller Family = osid.DebianDI  // preseed; kernel and initrd from a netboot tree
)

// OS describes one release pxekit knows by identifier ("rocky-9.0"): the
// identifiers DetectAs and NetbootDistro accept and Distro.OSID holds.
type OS = osid.Info

// OSes returns every release pxekit knows, families grouped and oldest
// first within a distribution. The slice is the caller's to modify.
func OSes() []OS { return osid.All() }

// LookupOS returns the release with the given identifier, ignoring case
// and surrounding space.
func LookupOS(id string) (OS, bool) { return osid.Lookup(id) }
