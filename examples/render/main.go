// Command render prints a boot menu or an answer file for one OS, so that an
// operator can read exactly what pxekit would serve before any machine boots.
//
//	go run ./examples/render -os rocky-9.0 -kind grub -repo http://10.0.0.1/rocky9 -answer http://10.0.0.1/ks.cfg
//	go run ./examples/render -os ubuntu-22.04 -kind autoinstall -layout lvm
//	go run ./examples/render -os debian-12 -kind preseed -spec site.yaml
//
// Menu kinds: grub, pxelinux, ipxe. Answer-file kinds: kickstart,
// autoinstall, meta-data, preseed. Without -spec the answer file comes from a
// built-in demonstration spec whose password is public (the file says so).
// A spec error exits with status 1 and names every field that is wrong. For
// answer files, standard error also says how large a disk the layout needs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/osid"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("render", flag.ContinueOnError)
	fl.SetOutput(stderr)
	osID := fl.String("os", "", "OS identifier: "+strings.Join(osid.IDs(), " "))
	kind := fl.String("kind", "", "what to print: grub, pxelinux, ipxe, kickstart, autoinstall, meta-data or preseed")
	repo := fl.String("repo", "", "menus: install source URL (anaconda tree, Ubuntu ISO, Debian mirror)")
	answer := fl.String("answer", "", "menus: answer-file URL (Ubuntu: the NoCloud seed directory)")
	httpBase := fl.String("http", "", "menus: HTTP URL of the boot server root; kernel and initrd are then loaded over HTTP where the loader can")
	dir := fl.String("dir", "", "menus: directory of the OS tree below the boot server root")
	console := fl.String("console", "", "menus: kernel console, e.g. ttyS0,115200n8")
	layout := fl.String("layout", "plain", "answer files without -spec: disk layout, plain or lvm")
	specFile := fl.String("spec", "", "answer files: spec in YAML (default: the built-in demonstration spec)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *osID == "" || *kind == "" {
		fmt.Fprintln(stderr, "render: -os and -kind are required")
		fl.Usage()
		return 2
	}
	if _, ok := osid.Lookup(*osID); !ok {
		fmt.Fprintf(stderr, "render: unknown -os %q; known: %s\n", *osID, strings.Join(osid.IDs(), " "))
		return 2
	}

	var out []byte
	var err error
	if k, kerr := bootmenu.ParseKind(*kind); kerr == nil {
		out, err = renderMenu(*osID, k, *dir, *repo, *answer, *httpBase, *console)
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

func renderMenu(osID string, k bootmenu.Kind, dir, repo, answer, httpBase, console string) ([]byte, error) {
	if answer == "" {
		return nil, errors.New("-answer is required for a menu")
	}
	m, err := bootmenu.InstallMenu(osID, dir, bootmenu.InstallInput{RepoURL: repo, AnswerURL: answer, Console: console})
	if err != nil {
		return nil, err
	}
	opt := bootmenu.Options{HTTPBase: httpBase, PXELinuxUI: "menu.c32"}
	if k == bootmenu.GRUB {
		if opt.GRUBDialect, err = bootmenu.DialectFor(osID); err != nil {
			return nil, err
		}
	}
	return bootmenu.Render(m, k, opt)
}

func renderAnswer(osID, kind, layout, specFile string) ([]byte, int, error) {
	switch kind {
	case answerfile.KindKickstart, answerfile.KindAutoinstall, answerfile.KindMetaData, answerfile.KindPreseed:
	default:
		return nil, 0, fmt.Errorf("unknown -kind %q: want grub, pxelinux, ipxe, kickstart, autoinstall, meta-data or preseed", kind)
	}
	var spec *answerfile.Spec
	if specFile == "" {
		if layout != answerfile.SchemePlain && layout != answerfile.SchemeLVM {
			return nil, 0, fmt.Errorf("-layout %q: want plain or lvm", layout)
		}
		spec = answerfile.DemoSpec(layout)
	} else {
		data, err := os.ReadFile(specFile)
		if err != nil {
			return nil, 0, err
		}
		if spec, err = answerfile.ParseSpec(data); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", specFile, err)
		}
	}
	out, err := answerfile.Render(osID, kind, spec)
	return out, spec.MinDiskMiB(), err
}
