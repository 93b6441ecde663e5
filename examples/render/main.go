// Command render prints a boot menu or an answer file for one OS, so that an
// operator can read exactly what pxekit would serve before any machine boots.
//
//	go run ./examples/render -os rocky-9.0 -kind grub -repo http://10.0.0.1/rocky9 -answer http://10.0.0.1/ks.cfg
//	go run ./examples/render -os ubuntu-22.04 -kind autoinstall -layout lvm
//	go run ./examples/render -os debian-12 -kind preseed -spec site.yaml
//
// Menu kinds: grub, pxelinux, ipxe. Answer-file kinds: kickstart,
// autoinstall, meta-data, preseed. Without -spec both come from a built-in
// demonstration spec whose password is public (the answer file says so).
// Menus are made as the example servers make them: answerfile.Build gives
// what the installer must know before it reads its answer file (for Debian
// the hostname and domain; a static address), -dns the nameservers when the
// spec names none, and a menu is printed only if every loader's menu
// renders. A spec error exits
// with status 1 and names every field that is wrong. For answer files,
// standard error also says how large a disk the layout needs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("render", flag.ContinueOnError)
	fl.SetOutput(stderr)
	ids := strings.Join(osIDs(), " ")
	osID := fl.String("os", "", "OS identifier: "+ids)
	kind := fl.String("kind", "", "what to print: grub, pxelinux, ipxe, kickstart, autoinstall, meta-data or preseed")
	repo := fl.String("repo", "", "menus: install source URL (anaconda tree, Ubuntu ISO, Debian mirror)")
	answer := fl.String("answer", "", "menus: answer-file URL (Ubuntu: the NoCloud seed directory)")
	httpBase := fl.String("http", "", "menus: HTTP URL of the boot server root; kernel and initrd are then loaded over HTTP where the loader can")
	dir := fl.String("dir", "", "menus: directory of the OS tree below the boot server root")
	console := fl.String("console", "", "menus: kernel console, e.g. ttyS0,115200n8")
	dns := fl.String("dns", "", "menus: comma-separated DNS servers for the installer when the spec names none, as the example servers give it the host's")
	layout := fl.String("layout", "plain", "without -spec: disk layout of the demonstration spec, plain or lvm")
	specFile := fl.String("spec", "", "spec in YAML: the answer file's content, and for menus the installer's hostname and static network (default: the built-in demonstration spec)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *osID == "" || *kind == "" {
		fmt.Fprintln(stderr, "render: -os and -kind are required")
		fl.Usage()
		return 2
	}
	if _, ok := bootmenu.LookupOS(*osID); !ok {
		fmt.Fprintf(stderr, "render: unknown -os %q; known: %s\n", *osID, ids)
		return 2
	}
	nameservers, err := parseDNS(*dns)
	if err != nil {
		fmt.Fprintf(stderr, "render: -dns: %v\n", err)
		return 2
	}

	var out []byte
	if k, kerr := bootmenu.ParseKind(*kind); kerr == nil {
		var spec *answerfile.Spec
		if spec, err = loadSpec(*layout, *specFile); err == nil {
			out, err = renderMenu(*osID, k, spec, menuFlags{dir: *dir, repo: *repo, answer: *answer, httpBase: *httpBase, console: *console, dns: nameservers})
		}
	} else {
		var minMiB int
		out, minMiB, err = renderAnswer(*osID, *kind, *layout, *specFile)
		if err == nil {
			fmt.Fprintf(stderr, "render: the layout needs a disk of at least %d MiB (%.1f GB)\n", minMiB, float64(minMiB)*(1<<20)/1e9)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "render: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// osIDs lists the accepted OS identifiers, sorted for reading.
func osIDs() []string {
	var ids []string
	for _, o := range bootmenu.OSes() {
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	return ids
}

// menuFlags are the command line's menu inputs.
type menuFlags struct {
	dir, repo, answer, httpBase, console string
	dns                                  []netip.Addr
}

// parseDNS parses a comma-separated list of IP addresses.
func parseDNS(list string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// renderMenu builds the menu the example servers serve for spec: the
// answer set's installer network on the kernel line, the install entry and
// a local-boot entry, rendered for every loader so that a menu one loader
// cannot carry is an error here too, as it is when a server starts.
func renderMenu(osID string, k bootmenu.Kind, spec *answerfile.Spec, f menuFlags) ([]byte, error) {
	if f.answer == "" {
		return nil, errors.New("-answer is required for a menu")
	}
	set, err := answerfile.Build(osID, spec, "")
	if err != nil {
		return nil, err
	}
	in := bootmenu.InstallInput{
		RepoURL: f.repo, AnswerURL: f.answer, Console: f.console, InstallerNet: set.Installer,
	}
	if len(in.Nameservers) == 0 {
		in.Nameservers = f.dns
	}
	m, err := bootmenu.InstallMenu(osID, f.dir, in)
	if err != nil {
		return nil, err
	}
	opt := bootmenu.Options{HTTPBase: f.httpBase, PXELinuxUI: "menu.c32"}
	if opt.GRUBDialect, err = bootmenu.DialectFor(osID); err != nil {
		return nil, err
	}
	menus, err := bootmenu.RenderAll(m, opt)
	if err != nil {
		return nil, err
	}
	return menus[k], nil
}

// loadSpec reads specFile, or without one returns the demonstration spec
// with the given layout scheme.
func loadSpec(layout, specFile string) (*answerfile.Spec, error) {
	if specFile == "" {
		if layout != answerfile.SchemePlain && layout != answerfile.SchemeLVM {
			return nil, fmt.Errorf("-layout %q: want plain or lvm", layout)
		}
		return answerfile.DemoSpec(layout), nil
	}
	data, err := os.ReadFile(specFile)
	if err != nil {
		return nil, err
	}
	spec, err := answerfile.ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", specFile, err)
	}
	return spec, nil
}

// renderAnswer renders one file of the OS's answer set: the one its
// installer reads, or Ubuntu's meta-data, which exists only beside its
// user-data.
func renderAnswer(osID, kind, layout, specFile string) ([]byte, int, error) {
	file, ok := map[string]struct {
		name string
		of   answerfile.Kind
	}{
		string(answerfile.KindKickstart):   {"ks.cfg", answerfile.KindKickstart},
		string(answerfile.KindPreseed):     {"preseed.cfg", answerfile.KindPreseed},
		string(answerfile.KindAutoinstall): {"seed/user-data", answerfile.KindAutoinstall},
		"meta-data":                        {"seed/meta-data", answerfile.KindAutoinstall},
	}[kind]
	if !ok {
		return nil, 0, fmt.Errorf("unknown -kind %q: want grub, pxelinux, ipxe, kickstart, autoinstall, meta-data or preseed", kind)
	}
	want, err := answerfile.KindFor(osID)
	if err != nil {
		return nil, 0, err
	}
	if want != file.of {
		return nil, 0, fmt.Errorf("%w: %s reads a %s, not %q", answerfile.ErrUnsupportedKind, osID, want, kind)
	}
	spec, err := loadSpec(layout, specFile)
	if err != nil {
		return nil, 0, err
	}
	set, err := answerfile.Build(osID, spec, "")
	if err != nil {
		return nil, 0, err
	}
	return set.Files[file.name], spec.MinDiskMiB(), nil
}
