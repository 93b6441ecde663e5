package answerfile

import "github.com/pxekit/pxekit/internal/osid"

// OS describes one supported release. It is the table bootmenu and isosrc
// share, so an identifier valid here is valid there.
type OS = osid.Info

// OSes returns every supported release, families grouped, oldest first
// within a distribution. The slice is the caller's.
func OSes() []OS { return osid.All() }

// LookupOS returns the release with the given identifier ("rocky-9.0");
// matching ignores case and surrounding space.
func LookupOS(id string) (OS, bool) { return osid.Lookup(id) }
