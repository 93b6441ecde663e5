package isosrc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pxekit/pxekit/internal/osid"
)

// ErrUnknownDistro means Detect found no installer it knows. The error is
// an *UnknownDistroError listing what was found; callers that know better
// use DetectAs.
var ErrUnknownDistro = errors.New("isosrc: unknown distribution")

// UnknownDistroError reports what Detect looked at when it gave up.
type UnknownDistroError struct {
	Found []string // metadata files and directories seen, e.g. ".discinfo", "images/"
}

func (e *UnknownDistroError) Error() string {
	if len(e.Found) == 0 {
		return ErrUnknownDistro.Error() + ": no installer metadata (.treeinfo, .disk/info, casper/, install.amd/) found"
	}
	return ErrUnknownDistro.Error() + ": found only " + strings.Join(e.Found, ", ")
}

// Unwrap makes errors.Is(err, ErrUnknownDistro) true.
func (e *UnknownDistroError) Unwrap() error { return ErrUnknownDistro }

// Answer-file dialects (Distro.AnswerFile).
const (
	AnswerKickstart   = "kickstart"   // anaconda
	AnswerAutoinstall = "autoinstall" // subiquity, cloud-init NoCloud user-data
	AnswerPreseed     = "preseed"     // debian-installer
)

// Kernel-argument styles (Distro.BootArgs).
const (
	// BootArgsAnaconda: inst.repo=URL inst.ks=URL [inst.stage2=URL] BOOTIF;
	// ip= only for a static address (without it anaconda's boot-option
	// docs say the network is configured by DHCP).
	BootArgsAnaconda = "anaconda"
	// BootArgsCasper: ip=dhcp url=ISO-URL autoinstall ds=nocloud-net;s=URL/
	// (the live initrd downloads the whole ISO into RAM).
	BootArgsCasper = "casper"
	// BootArgsDebianInstaller: auto=true priority=critical url=PRESEED-URL
	// (netboot kernel and initrd only).
	BootArgsDebianInstaller = "debian-installer"
)

// Where shim and GRUB were found (Distro.EFISource).
const (
	EFIFromTree     = "tree"     // paths are in the ISO's own tree
	EFIFromElTorito = "eltorito" // paths are inside the El Torito UEFI FAT image (Image.EFIFS)
)

// Distro is what Detect learns about an installation image. Paths are
// fs.FS paths in the image (no leading slash) unless a field says
// otherwise. The JSON form is what examples/isoinfo prints.
//
// isosrc does not change a Distro it has returned (WithNetboot returns a
// changed copy), so one can be shared by goroutines that only read it.
type Distro struct {
	Family  Family `json:"family"`            // FamilyAnaconda, FamilySubiquity or FamilyDebianInstaller
	Distro  string `json:"distro"`            // distribution key: "rocky", "ubuntu", "debian", ...
	Name    string `json:"name"`              // "Rocky Linux", "Ubuntu Server"
	Version string `json:"version"`           // as the image writes it: "9.0", "22.03-LTS", "V10", "22.04.4", "12.2.0"
	Arch    string `json:"arch"`              // as the distribution spells it: "x86_64", "amd64", "aarch64", "arm64"
	Variant string `json:"variant,omitempty"` // "BaseOS", "Server", "live-server", "DVD", "NETINST"
	// Codename is the Debian/Ubuntu release codename, lower case.
	Codename string `json:"codename,omitempty"`

	// OSID is the closest pxekit OS identifier ("rocky-9.0"); empty when
	// none fits. OSIDMatch says how it was chosen: "exact" (same
	// release, point releases included), or "same-major" (the nearest
	// known release of the same major version, e.g. Rocky 9.3 -> rocky-9.0).
	OSID      string `json:"osid,omitempty"`
	OSIDMatch string `json:"osid_match,omitempty"`

	Kernel string `json:"kernel"`
	Initrd string `json:"initrd"`
	// NetbootKernel and NetbootInitrd are paths in the companion netboot
	// source given to WithNetboot (Debian), served instead of Kernel/Initrd.
	NetbootKernel string `json:"netboot_kernel,omitempty"`
	NetbootInitrd string `json:"netboot_initrd,omitempty"`

	Shim      string `json:"shim,omitempty"`       // EFI/BOOT/BOOTX64.EFI
	GRUB      string `json:"grub,omitempty"`       // EFI/BOOT/grubx64.efi
	EFISource string `json:"efi_source,omitempty"` // EFIFromTree or EFIFromElTorito
	Isolinux  string `json:"isolinux,omitempty"`   // directory holding isolinux.bin (BIOS CD boot; its menu shows kernel args)
	Pxelinux  string `json:"pxelinux,omitempty"`   // pxelinux.0 in the netboot source, when given

	RepoRoot string   `json:"repo_root"`       // package repository root to serve: "." for every supported image
	Repos    []string `json:"repos,omitempty"` // anaconda variant repositories under RepoRoot ("BaseOS", "AppStream")
	Stage2   string   `json:"stage2,omitempty"`

	AnswerFile string `json:"answer_file"` // AnswerKickstart, AnswerAutoinstall or AnswerPreseed
	BootArgs   string `json:"boot_args"`   // BootArgsAnaconda, BootArgsCasper or BootArgsDebianInstaller

	Warnings []string `json:"warnings"`
	// Sources lists the files detection read, for the curious and for
	// bug reports.
	Sources []string `json:"sources"`
}

const maxMetaFile = 256 << 10

// readSmall reads a metadata file, refusing anything implausibly large.
func readSmall(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxMetaFile {
		return "", fmt.Errorf("%s: larger than %d bytes, not a metadata file", name, maxMetaFile)
	}
	return string(b), nil
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

func isFile(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.Mode().IsRegular()
}

// findFold returns the stored spelling of name, matching each element
// case-insensitively (EFI/BOOT vs EFI/boot), or "".
func findFold(fsys fs.FS, name string) string {
	if isFile(fsys, name) {
		return name
	}
	dir := "."
	for _, el := range strings.Split(name, "/") {
		ents, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return ""
		}
		found := ""
		for _, e := range ents {
			if strings.EqualFold(e.Name(), el) {
				found = e.Name()
				break
			}
		}
		if found == "" {
			return ""
		}
		dir = path.Join(dir, found)
	}
	if !isFile(fsys, dir) {
		return ""
	}
	return dir
}

func firstFile(fsys fs.FS, names ...string) string {
	for _, n := range names {
		if isFile(fsys, n) {
			return n
		}
	}
	return ""
}

// Detect inspects an installation image (an *Image, or any fs.FS such as a
// copied tree) and describes its installer. An image it does not recognise
// gives an *UnknownDistroError (errors.Is ErrUnknownDistro). Detection
// reads only small metadata files: .treeinfo, .discinfo, media.repo,
// .disk/info and dists/*/Release.
func Detect(fsys fs.FS) (*Distro, error) {
	d := &Distro{RepoRoot: ".", Warnings: []string{}, Sources: []string{}}
	switch {
	case exists(fsys, ".treeinfo") || exists(fsys, ".discinfo") || isFile(fsys, "images/pxeboot/vmlinuz"):
		if err := detectAnaconda(fsys, d); err != nil {
			return nil, err
		}
	case exists(fsys, "casper"):
		if err := detectUbuntu(fsys, d); err != nil {
			return nil, err
		}
	case exists(fsys, ".disk/info") || exists(fsys, "install.amd") || exists(fsys, "install.a64") || exists(fsys, "dists"):
		if err := detectDebian(fsys, d); err != nil {
			return nil, err
		}
	default:
		return nil, unknown(fsys)
	}
	findEFI(fsys, d)
	if isFile(fsys, "isolinux/isolinux.bin") {
		d.Isolinux = "isolinux"
	}
	d.matchOSID()
	return d, nil
}

// unknown lists the top-level names, so the error says what the image is.
func unknown(fsys fs.FS) error {
	e := &UnknownDistroError{}
	ents, _ := fs.ReadDir(fsys, ".")
	for _, ent := range ents {
		n := ent.Name()
		if ent.IsDir() {
			n += "/"
		}
		e.Found = append(e.Found, n)
		if len(e.Found) == 12 {
			e.Found = append(e.Found, "...")
			break
		}
	}
	return e
}

// DetectAs describes fsys as the release id ("rocky-9.0") without trusting
// its metadata: for images Detect does not know, or gets wrong. Boot files
// are still looked up where that release's installer keeps them.
func DetectAs(fsys fs.FS, id string) (*Distro, error) {
	in, ok := osid.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("isosrc: unknown OS identifier %q (known: %s)", id, strings.Join(osid.IDs(), ", "))
	}
	d := &Distro{
		Family: in.Family, Distro: in.Distro, Name: in.Name, Version: in.Version,
		Codename: in.Codename, OSID: in.ID, OSIDMatch: "given", RepoRoot: ".",
		Warnings: []string{"identity given by the caller (" + in.ID + "), not detected"}, Sources: []string{},
	}
	switch in.Family {
	case osid.Anaconda:
		d.AnswerFile, d.BootArgs = AnswerKickstart, BootArgsAnaconda
		d.Kernel = firstFile(fsys, "images/pxeboot/vmlinuz")
		d.Initrd = firstFile(fsys, "images/pxeboot/initrd.img")
		d.Stage2 = firstFile(fsys, "images/install.img", "LiveOS/squashfs.img")
	case osid.Subiquity:
		d.AnswerFile, d.BootArgs = AnswerAutoinstall, BootArgsCasper
		d.Kernel = firstFile(fsys, "casper/vmlinuz", "casper/hwe-vmlinuz")
		d.Initrd = firstFile(fsys, "casper/initrd", "casper/hwe-initrd", "casper/initrd.lz")
	case osid.DebianDI:
		d.AnswerFile, d.BootArgs = AnswerPreseed, BootArgsDebianInstaller
		d.Kernel = firstFile(fsys, "install.amd/vmlinuz", "install.a64/vmlinuz")
		d.Initrd = firstFile(fsys, "install.amd/initrd.gz", "install.a64/initrd.gz")
		d.Warnings = append(d.Warnings, debianCDInitrd)
	}
	if d.Kernel == "" || d.Initrd == "" {
		d.Warnings = append(d.Warnings, "kernel or initrd not found where "+in.Name+" keeps them")
	}
	findEFI(fsys, d)
	if isFile(fsys, "isolinux/isolinux.bin") {
		d.Isolinux = "isolinux"
	}
	return d, nil
}

// findEFI looks for shim and GRUB in the tree, then in the El Torito UEFI
// image when fsys is an *Image (or anything else offering EFIFS).
func findEFI(fsys fs.FS, d *Distro) {
	shimNames := []string{"EFI/BOOT/BOOTX64.EFI"}
	grubNames := []string{"EFI/BOOT/grubx64.efi"}
	if a := strings.ToLower(d.Arch); a == "aarch64" || a == "arm64" {
		shimNames = []string{"EFI/BOOT/BOOTAA64.EFI"}
		grubNames = []string{"EFI/BOOT/grubaa64.efi"}
	}
	look := func(f fs.FS) (shim, grub string) {
		for _, n := range shimNames {
			if p := findFold(f, n); p != "" {
				shim = p
			}
		}
		for _, n := range grubNames {
			if p := findFold(f, n); p != "" {
				grub = p
			}
		}
		return
	}
	if s, g := look(fsys); s != "" || g != "" {
		d.Shim, d.GRUB, d.EFISource = s, g, EFIFromTree
		return
	}
	if e, ok := fsys.(interface{ EFIFS() (fs.FS, error) }); ok {
		efi, err := e.EFIFS()
		switch {
		case err == nil:
			if s, g := look(efi); s != "" || g != "" {
				d.Shim, d.GRUB, d.EFISource = s, g, EFIFromElTorito
				return
			}
		case !errors.Is(err, ErrNoBootImage):
			d.Warnings = append(d.Warnings, "El Torito "+strings.TrimPrefix(err.Error(), "isosrc: ")+": image ignored")
		}
	}
	d.Warnings = append(d.Warnings, "no UEFI boot loader (shim/GRUB) found in the tree or the El Torito image: UEFI clients need one from elsewhere")
}

// ---------- anaconda ----------

// ini is a parsed .treeinfo / media.repo: section -> key -> value, with
// section and key names lower-cased.
type ini map[string]map[string]string

func parseINI(s string) ini {
	out := ini{}
	sec := ""
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			sec = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			if out[sec] == nil {
				out[sec] = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if out[sec] == nil {
			out[sec] = map[string]string{}
		}
		out[sec][strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out
}

func (c ini) get(sec, key string) string { return c[sec][key] }

// distroKeys maps words found in names to osid distribution keys, most
// specific first.
var distroKeys = []struct{ word, key, name string }{
	{"almalinux", "alma", "AlmaLinux"},
	{"rocky", "rocky", "Rocky Linux"},
	{"anolis", "anolis", "Anolis OS"},
	{"openeuler", "openeuler", "openEuler"},
	{"kylin", "kylin", "Kylin Linux Advanced Server"},
	{"uniontech", "uos", "UOS Server"},
	{"uos", "uos", "UOS Server"},
	{"red hat", "rhel", "Red Hat Enterprise Linux"},
	{"rhel", "rhel", "Red Hat Enterprise Linux"},
	{"centos", "centos", "CentOS Linux"},
}

func distroKey(names ...string) (key, name string) {
	for _, k := range distroKeys {
		for _, n := range names {
			if strings.Contains(strings.ToLower(n), k.word) {
				return k.key, k.name
			}
		}
	}
	return "", ""
}

func detectAnaconda(fsys fs.FS, d *Distro) error {
	d.Family = FamilyAnaconda
	d.AnswerFile, d.BootArgs = AnswerKickstart, BootArgsAnaconda
	var ti ini
	if s, err := readSmall(fsys, ".treeinfo"); err == nil {
		ti = parseINI(s)
		d.Sources = append(d.Sources, ".treeinfo")
	} else {
		ti = ini{}
	}
	var disc []string
	if s, err := readSmall(fsys, ".discinfo"); err == nil {
		disc = strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
		d.Sources = append(d.Sources, ".discinfo")
	}
	discLine := func(i int) string {
		if i < len(disc) {
			return strings.TrimSpace(disc[i])
		}
		return ""
	}
	mediaName := ""
	if s, err := readSmall(fsys, "media.repo"); err == nil {
		mediaName = parseINI(s).get("installmedia", "name")
		d.Sources = append(d.Sources, "media.repo")
	}

	// productmd (RHEL 7.x and every EL8+) has [release]; the older
	// format has only [general].
	relName := firstNonEmpty(ti.get("release", "name"), ti.get("general", "family"))
	short := ti.get("release", "short")
	d.Version = firstNonEmpty(ti.get("release", "version"), ti.get("general", "version"))
	d.Arch = firstNonEmpty(ti.get("tree", "arch"), ti.get("general", "arch"), discLine(2))
	d.Variant = firstNonEmpty(ti.get("general", "variant"), firstOf(ti.get("tree", "variants")))
	// .discinfo's second line is the release; it is sometimes more
	// precise than .treeinfo ("7.9" against "7").
	if dv := discLine(1); dv != "" {
		if d.Version == "" || (strings.HasPrefix(dv, d.Version+".") && !strings.Contains(d.Version, ".")) {
			d.Version = dv
		}
	}
	d.Distro, d.Name = distroKey(relName, short, ti.get("general", "name"), mediaName)
	if d.Name == "" {
		d.Name = firstNonEmpty(relName, mediaName, "unknown anaconda distribution")
	}
	if d.Version == "" {
		d.Warnings = append(d.Warnings, "no release version in .treeinfo or .discinfo")
	}

	// Boot files: [images-ARCH] names them; fall back to the usual place.
	imgSec := "images-" + d.Arch
	d.Kernel = firstFile(fsys, ti.get(imgSec, "kernel"), "images/pxeboot/vmlinuz")
	d.Initrd = firstFile(fsys, ti.get(imgSec, "initrd"), "images/pxeboot/initrd.img")
	if d.Kernel == "" || d.Initrd == "" {
		d.Warnings = append(d.Warnings, "no PXE kernel/initrd (images/pxeboot/) in the image")
	}
	if st := ti.get("stage2", "mainimage"); st != "" {
		if isFile(fsys, st) {
			d.Stage2 = st
		} else {
			d.Warnings = append(d.Warnings, ".treeinfo names stage2 "+st+" but it is missing")
		}
	} else {
		d.Stage2 = firstFile(fsys, "images/install.img", "LiveOS/squashfs.img")
	}

	// Variant repositories (productmd): BaseOS and AppStream on EL8+.
	for _, v := range splitList(ti.get("tree", "variants")) {
		repo := ti.get("variant-"+strings.ToLower(v), "repository")
		if repo == "" || repo == "." {
			continue
		}
		if exists(fsys, path.Join(repo, "repodata/repomd.xml")) {
			d.Repos = append(d.Repos, repo)
		} else {
			d.Warnings = append(d.Warnings, "variant repository "+repo+" has no repodata/repomd.xml")
		}
	}
	if len(d.Repos) == 0 && !exists(fsys, "repodata/repomd.xml") {
		d.Warnings = append(d.Warnings, "no package repository (repodata/) on the image: a boot-only image needs inst.repo pointing elsewhere")
	}
	if !slices.Contains(d.Sources, ".treeinfo") {
		d.Warnings = append(d.Warnings, "no .treeinfo: identity guessed from .discinfo/media.repo")
	}
	return nil
}

// ---------- Ubuntu ----------

// diskInfoRE parses .disk/info of Ubuntu and Debian images:
//
//	Ubuntu-Server 22.04.4 LTS "Jammy Jellyfish" - Release amd64 (20240220)
//	Debian GNU/Linux 12.2.0 "Bookworm" - Official amd64 NETINST with firmware 20231007-10:28
var diskInfoRE = regexp.MustCompile(`^(.*?)\s+(\d+(?:\.\d+)*)(?:\s+LTS)?\s+"([^"]*)"\s+-\s+(\S+)\s+(\S+)\s*(.*)$`)

type diskInfo struct {
	product, version, codename, kind, arch, rest string
}

func parseDiskInfo(s string) (diskInfo, bool) {
	s = strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	m := diskInfoRE.FindStringSubmatch(s)
	if m == nil {
		return diskInfo{}, false
	}
	return diskInfo{product: m[1], version: m[2], codename: m[3], kind: m[4], arch: m[5], rest: m[6]}, true
}

// releaseFile reads the first dists/*/Release (following symlinks such as
// dists/stable) and returns its fields.
func releaseFile(fsys fs.FS, d *Distro) map[string]string {
	ents, err := fs.ReadDir(fsys, "dists")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink != 0 { // stable -> bookworm: read the real one
			continue
		}
		p := "dists/" + e.Name() + "/Release"
		s, err := readSmall(fsys, p)
		if err != nil {
			continue
		}
		d.Sources = append(d.Sources, p)
		out := map[string]string{}
		for _, line := range strings.Split(s, "\n") {
			if line == "" || line[0] == ' ' {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				out[strings.ToLower(k)] = strings.TrimSpace(v)
			}
		}
		return out
	}
	return nil
}

func detectUbuntu(fsys fs.FS, d *Distro) error {
	d.Family = FamilySubiquity
	d.Distro, d.Name = "ubuntu", "Ubuntu Server"
	d.AnswerFile, d.BootArgs = AnswerAutoinstall, BootArgsCasper
	if s, err := readSmall(fsys, ".disk/info"); err == nil {
		d.Sources = append(d.Sources, ".disk/info")
		if di, ok := parseDiskInfo(s); ok {
			d.Version, d.Arch = di.version, di.arch
			d.Codename = strings.ToLower(strings.Fields(di.codename + " x")[0])
			if !strings.Contains(strings.ToLower(di.product), "server") {
				d.Name = "Ubuntu"
				d.Variant = "desktop"
				d.Warnings = append(d.Warnings, "desktop image: autoinstall of desktop images needs Ubuntu 23.04 or later; use the live-server image")
			}
		} else {
			d.Warnings = append(d.Warnings, ".disk/info not in the usual format: "+strings.TrimSpace(s))
		}
	}
	if rel := releaseFile(fsys, d); rel != nil {
		d.Version = firstNonEmpty(d.Version, rel["version"])
		d.Codename = firstNonEmpty(d.Codename, rel["codename"])
		d.Arch = firstNonEmpty(d.Arch, firstOf(strings.ReplaceAll(rel["architectures"], " ", ",")))
	}
	if d.Variant == "" {
		d.Variant = "live-server"
	}
	d.Kernel = firstFile(fsys, "casper/vmlinuz", "casper/hwe-vmlinuz")
	d.Initrd = firstFile(fsys, "casper/initrd", "casper/hwe-initrd", "casper/initrd.lz")
	if d.Kernel == "" || d.Initrd == "" {
		d.Warnings = append(d.Warnings, "no casper/vmlinuz or casper/initrd in the image")
	}
	if d.Version == "" {
		d.Warnings = append(d.Warnings, "no release version in .disk/info or dists/*/Release")
	}
	d.Warnings = append(d.Warnings, "the live-server initrd downloads the whole ISO (url=) into RAM: clients need more RAM than the ISO's size")
	return nil
}

// ---------- Debian ----------

const debianCDInitrd = "the initrd on a Debian ISO is a CD-ROM initrd and cannot install over the network: give a netboot source (Debian's netboot.tar.gz or its unpacked directory, same release) with OpenNetboot and Distro.WithNetboot"

func detectDebian(fsys fs.FS, d *Distro) error {
	d.Family = FamilyDebianInstaller
	d.Distro, d.Name = "debian", "Debian GNU/Linux"
	d.AnswerFile, d.BootArgs = AnswerPreseed, BootArgsDebianInstaller
	if s, err := readSmall(fsys, ".disk/info"); err == nil {
		d.Sources = append(d.Sources, ".disk/info")
		if di, ok := parseDiskInfo(s); ok {
			if !strings.Contains(strings.ToLower(di.product), "debian") {
				return &UnknownDistroError{Found: []string{".disk/info: " + strings.TrimSpace(s)}}
			}
			d.Version, d.Arch = di.version, di.arch
			d.Codename = strings.ToLower(di.codename)
			d.Variant = strings.TrimSpace(strings.Fields(di.rest + " x")[0])
			if d.Variant == "x" {
				d.Variant = ""
			}
		}
	}
	if rel := releaseFile(fsys, d); rel != nil {
		d.Version = firstNonEmpty(d.Version, rel["version"])
		d.Codename = firstNonEmpty(d.Codename, rel["codename"])
		d.Arch = firstNonEmpty(d.Arch, firstOf(strings.ReplaceAll(rel["architectures"], " ", ",")))
	}
	if d.Version == "" && d.Codename == "" {
		return unknown(fsys)
	}
	d.Kernel = firstFile(fsys, "install.amd/vmlinuz", "install.a64/vmlinuz", "install/vmlinuz")
	d.Initrd = firstFile(fsys, "install.amd/initrd.gz", "install.a64/initrd.gz", "install/initrd.gz")
	if d.Kernel == "" || d.Initrd == "" {
		d.Warnings = append(d.Warnings, "no install.amd/vmlinuz or install.amd/initrd.gz in the image")
	}
	d.Warnings = append(d.Warnings, debianCDInitrd)
	return nil
}

// debArch maps distribution arch names to Debian's.
func debArch(a string) string {
	switch strings.ToLower(a) {
	case "x86_64", "amd64", "":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return strings.ToLower(a)
}

// WithNetboot returns a copy of d that boots the kernel and initrd of a
// Debian netboot source (see OpenNetboot), which can install over the
// network where the ISO's CD initrd cannot; the ISO stays the package
// source. d itself is not modified, so one detected Distro can be shared.
// The error names the paths the source lacks; a source of another release
// than d's is accepted with a warning in the copy's Warnings.
func (d *Distro) WithNetboot(nb fs.FS) (*Distro, error) {
	if nb == nil {
		return nil, errors.New("isosrc: no netboot source")
	}
	arch := debArch(d.Arch)
	base := "debian-installer/" + arch
	k, i := path.Join(base, "linux"), path.Join(base, "initrd.gz")
	if !isFile(nb, k) || !isFile(nb, i) {
		return nil, fmt.Errorf("isosrc: netboot source has no %s and %s", k, i)
	}
	c := d.clone()
	c.NetbootKernel, c.NetbootInitrd = k, i
	if isFile(nb, "pxelinux.0") {
		c.Pxelinux = "pxelinux.0"
	}
	c.Warnings = slices.DeleteFunc(c.Warnings, func(w string) bool { return w == debianCDInitrd })
	if s, err := readSmall(nb, "version.info"); err == nil && c.Codename != "" &&
		!strings.Contains(strings.ToLower(s), strings.ToLower(c.Codename)) {
		c.Warnings = append(c.Warnings, "netboot source is not for "+c.Codename+" ("+strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])+"): the installer will not match the ISO's packages")
	}
	return c, nil
}

// clone copies d, slices included, so that the copy can be changed.
func (d *Distro) clone() *Distro {
	c := *d
	c.Repos = slices.Clone(d.Repos)
	c.Warnings = slices.Clone(d.Warnings)
	c.Sources = slices.Clone(d.Sources)
	return &c
}

// debianNetbootArches are the architectures NetbootDistro looks for, the
// one bootmenu's default paths name first.
var debianNetbootArches = []string{"amd64", "arm64"}

// NetbootDistro describes a Debian netboot tree given without an ISO (an
// unpacked netboot.tar.gz, or the directory of a
// debian-installer-12-netboot-ARCH package), so that menus boot the kernel
// of the architecture the tree holds: the arm64 tree has
// debian-installer/arm64/, not the amd64 path bootmenu names by default.
// The Distro has osID's identity, the Arch found ("amd64" first, then
// "arm64") and the netboot kernel and initrd paths; Kernel and Initrd stay
// empty, as there is no ISO. It is an error when osID is not a release of
// FamilyDebianInstaller or when the tree holds no installer it knows.
func NetbootDistro(osID string, nb fs.FS) (*Distro, error) {
	in, ok := osid.Lookup(osID)
	if !ok {
		return nil, fmt.Errorf("isosrc: unknown OS identifier %q (known: %s)", osID, strings.Join(osid.IDs(), ", "))
	}
	if in.Family != FamilyDebianInstaller {
		return nil, fmt.Errorf("isosrc: %s uses the %s installer, which boots from its ISO: a netboot tree is for %s releases", in.ID, in.Family, FamilyDebianInstaller)
	}
	if nb == nil {
		return nil, fmt.Errorf("isosrc: %s: no netboot source", in.ID)
	}
	for _, arch := range debianNetbootArches {
		d := &Distro{
			Family: in.Family, Distro: in.Distro, Name: in.Name, Version: in.Version,
			Arch: arch, Codename: in.Codename, OSID: in.ID, OSIDMatch: "given", RepoRoot: ".",
			AnswerFile: AnswerPreseed, BootArgs: BootArgsDebianInstaller,
			Warnings: []string{}, Sources: []string{},
		}
		if nd, err := d.WithNetboot(nb); err == nil {
			return nd, nil
		}
	}
	return nil, fmt.Errorf("isosrc: the netboot tree for %s holds no installer: no debian-installer/{%s}/linux with initrd.gz",
		in.ID, strings.Join(debianNetbootArches, ","))
}

// ---------- matching ----------

// normVersion reduces a version as written to dotted numbers:
// "22.03-LTS" -> "22.03", "V10" -> "10", "12.2.0" -> "12.2.0".
func normVersion(v string) string {
	v = strings.TrimSpace(strings.ToLower(v))
	v = strings.TrimPrefix(v, "v")
	end := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		v = v[:end]
	}
	return strings.Trim(v, ".")
}

func versionParts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// matchOSIDFor picks the osid for a distribution key and version:
// "exact" when the known release's numbers are a prefix of the image's
// (22.04 for 22.04.4, 12 for 12.2.0, 9.0 for 9.0); otherwise "same-major"
// with the highest known release of that major not newer than the image,
// or else the oldest newer one (Rocky 9.3 -> rocky-9.0; CentOS 7 -> 7.9).
func matchOSIDFor(key, version string) (id, how string) {
	have := versionParts(normVersion(version))
	if key == "" || len(have) == 0 {
		return "", ""
	}
	var same []osid.Info
	for _, in := range osid.All() {
		if in.Distro != key {
			continue
		}
		want := versionParts(normVersion(in.Version))
		if len(want) > 0 && len(want) <= len(have) && slices.Equal(want, have[:len(want)]) {
			return in.ID, "exact"
		}
		if len(want) > 0 && want[0] == have[0] {
			same = append(same, in)
		}
	}
	if len(same) == 0 {
		return "", ""
	}
	cmp := func(a, b []int) int { return slices.Compare(a, b) }
	var best osid.Info
	var bestV []int
	for _, in := range same { // highest not newer
		v := versionParts(normVersion(in.Version))
		if cmp(v, have) <= 0 && (bestV == nil || cmp(v, bestV) > 0) {
			best, bestV = in, v
		}
	}
	if bestV == nil {
		for _, in := range same { // oldest newer
			v := versionParts(normVersion(in.Version))
			if bestV == nil || cmp(v, bestV) < 0 {
				best, bestV = in, v
			}
		}
	}
	return best.ID, "same-major"
}

func (d *Distro) matchOSID() {
	id, how := matchOSIDFor(d.Distro, d.Version)
	if id == "" && d.Distro == "debian" && d.Codename != "" {
		for _, in := range osid.All() {
			if in.Distro == "debian" && in.Codename == d.Codename {
				id, how = in.ID, "exact"
			}
		}
	}
	d.OSID, d.OSIDMatch = id, how
	switch how {
	case "":
		d.Warnings = append(d.Warnings, fmt.Sprintf("no pxekit OS identifier for %s %s: pass one to DetectAs", d.Name, d.Version))
	case "same-major":
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s %s is not a known release; using %s, the nearest with the same major version", d.Name, d.Version, id))
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstOf(s string) string {
	l := splitList(s)
	if len(l) == 0 {
		return ""
	}
	return l[0]
}
