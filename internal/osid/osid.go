// Package osid is the one table of operating-system identifiers that every
// pxekit package and example agrees on ("rocky-9.0", "debian-12", ...).
//
// Public APIs take and return these identifiers as plain strings so that
// callers outside the module can use them; this package only keeps the table
// in one place so that answerfile, bootmenu, isosrc and the examples cannot
// drift apart.
package osid

import (
	"sort"
	"strings"
)

// Family is the installer program an OS uses; it decides the answer-file
// format and the kernel arguments.
type Family string

// Installer families.
const (
	Anaconda  Family = "anaconda"         // kickstart
	Subiquity Family = "subiquity"        // Ubuntu autoinstall (cloud-init NoCloud)
	DebianDI  Family = "debian-installer" // preseed
)

// Info describes one supported operating system release.
type Info struct {
	ID      string // stable identifier, e.g. "rocky-9.0"
	Distro  string // distribution key, e.g. "rocky"
	Name    string // human name, e.g. "Rocky Linux"
	Version string // release as users write it, e.g. "9.0", "V10", "20.04", "12"
	Major   int    // major release number used for dialect decisions (7, 8, 9, 22, 20, 10, 12 ...)
	Family  Family
	// ELMajor is the Enterprise Linux generation the release behaves like
	// (anaconda version, GRUB flavour): 7, 8 or 9 for the EL clones; 9 for
	// openEuler 22.03, Kylin V10 and UOS 20, whose anaconda 33 and GRUB 2.04+
	// follow Fedora 33 rather than RHEL 7. Zero for non-anaconda systems.
	ELMajor int
	// Codename is the Debian/Ubuntu release codename ("bookworm", "jammy").
	Codename string
}

var table = []Info{
	{ID: "centos-7.9", Distro: "centos", Name: "CentOS Linux", Version: "7.9", Major: 7, Family: Anaconda, ELMajor: 7},
	{ID: "rhel-7.9", Distro: "rhel", Name: "Red Hat Enterprise Linux", Version: "7.9", Major: 7, Family: Anaconda, ELMajor: 7},
	{ID: "anolis-7.9", Distro: "anolis", Name: "Anolis OS", Version: "7.9", Major: 7, Family: Anaconda, ELMajor: 7},
	{ID: "alma-8.5", Distro: "alma", Name: "AlmaLinux", Version: "8.5", Major: 8, Family: Anaconda, ELMajor: 8},
	{ID: "rocky-8.5", Distro: "rocky", Name: "Rocky Linux", Version: "8.5", Major: 8, Family: Anaconda, ELMajor: 8},
	{ID: "rocky-9.0", Distro: "rocky", Name: "Rocky Linux", Version: "9.0", Major: 9, Family: Anaconda, ELMajor: 9},
	{ID: "openeuler-22.03", Distro: "openeuler", Name: "openEuler", Version: "22.03 LTS", Major: 22, Family: Anaconda, ELMajor: 9},
	{ID: "uos-20", Distro: "uos", Name: "UOS Server", Version: "20", Major: 20, Family: Anaconda, ELMajor: 9},
	{ID: "kylin-v10", Distro: "kylin", Name: "Kylin Linux Advanced Server", Version: "V10", Major: 10, Family: Anaconda, ELMajor: 9},
	{ID: "ubuntu-20.04", Distro: "ubuntu", Name: "Ubuntu Server", Version: "20.04", Major: 20, Family: Subiquity, Codename: "focal"},
	{ID: "ubuntu-22.04", Distro: "ubuntu", Name: "Ubuntu Server", Version: "22.04", Major: 22, Family: Subiquity, Codename: "jammy"},
	{ID: "ubuntu-24.04", Distro: "ubuntu", Name: "Ubuntu Server", Version: "24.04", Major: 24, Family: Subiquity, Codename: "noble"},
	{ID: "debian-9", Distro: "debian", Name: "Debian GNU/Linux", Version: "9", Major: 9, Family: DebianDI, Codename: "stretch"},
	{ID: "debian-10", Distro: "debian", Name: "Debian GNU/Linux", Version: "10", Major: 10, Family: DebianDI, Codename: "buster"},
	{ID: "debian-11", Distro: "debian", Name: "Debian GNU/Linux", Version: "11", Major: 11, Family: DebianDI, Codename: "bullseye"},
	{ID: "debian-12", Distro: "debian", Name: "Debian GNU/Linux", Version: "12", Major: 12, Family: DebianDI, Codename: "bookworm"},
}

// Lookup returns the release with the given identifier. Matching ignores
// case and surrounding space.
func Lookup(id string) (Info, bool) {
	id = strings.ToLower(strings.TrimSpace(id))
	for _, in := range table {
		if in.ID == id {
			return in, true
		}
	}
	return Info{}, false
}

// All returns every known release, in the table's order (families grouped,
// oldest first within a distribution).
func All() []Info {
	return append([]Info(nil), table...)
}

// IDs returns every identifier, sorted.
func IDs() []string {
	ids := make([]string, len(table))
	for i, in := range table {
		ids[i] = in.ID
	}
	sort.Strings(ids)
	return ids
}
