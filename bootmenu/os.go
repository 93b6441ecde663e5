package bootmenu

import (
	"github.com/pxekit/pxekit/internal/instnet"
	"github.com/pxekit/pxekit/internal/osid"
)

// OS describes one operating-system release that InstallArgs, BootFiles and
// DialectFor accept by its ID ("rocky-9.0", "ubuntu-24.04", "debian-12").
// It is the table answerfile and isosrc use too, so an ID valid in one
// package is valid in all.
type OS = osid.Info

// OSes returns every release the package knows, in table order (installer
// families grouped, oldest first within a distribution). The slice is the
// caller's.
func OSes() []OS { return osid.All() }

// LookupOS returns the release with the given ID; matching ignores case and
// surrounding space.
func LookupOS(id string) (OS, bool) { return osid.Lookup(id) }

// InstallerNet is the installer's network before it reads its answer file:
// the type answerfile.Set carries as Installer, embedded in InstallInput.
type InstallerNet = instnet.Net
