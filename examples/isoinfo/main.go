// Command isoinfo says what a distribution ISO is and how pxekit would boot
// it: family, name, version, architecture, kernel and initrd, boot loaders,
// install repository, answer-file dialect and warnings. It reads the image in
// place, without mounting it or needing root.
//
//	go run ./examples/isoinfo Rocky-9.0-x86_64-dvd.iso
//	go run ./examples/isoinfo -json debian-12.5.0-amd64-netinst.iso
//	go run ./examples/isoinfo -os kylin-v10 -json Kylin-Server-V10-SP3.iso
//
// Exit status 1, with a message naming what was found, for an unknown or
// damaged image.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pxekit/pxekit/isosrc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("isoinfo", flag.ContinueOnError)
	fl.SetOutput(stderr)
	asJSON := fl.Bool("json", false, "print one JSON object")
	osID := fl.String("os", "", "skip detection: treat the image as this OS id")
	netboot := fl.String("netboot", "", "Debian: netboot directory or netboot.tar.gz to take kernel and initrd from")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: isoinfo [-json] [-os ID] [-netboot DIR] FILE.iso")
		return 2
	}
	file := fl.Arg(0)
	img, err := isosrc.Open(file, isosrc.Limits{})
	if err != nil {
		fmt.Fprintf(stderr, "isoinfo: %s: %v\n", file, err)
		return 1
	}
	defer img.Close()
	var d *isosrc.Distro
	if *osID != "" {
		d, err = isosrc.DetectAs(img, *osID)
	} else {
		d, err = isosrc.Detect(img)
	}
	if err != nil {
		if errors.Is(err, isosrc.ErrUnknownDistro) {
			fmt.Fprintf(stderr, "isoinfo: %s: %v\n(if you know what it is, name it with -os ID)\n", file, err)
		} else {
			fmt.Fprintf(stderr, "isoinfo: %s: %v\n", file, err)
		}
		return 1
	}
	if *netboot != "" {
		nb, err := isosrc.OpenNetboot(*netboot)
		if err == nil {
			if c, ok := nb.(io.Closer); ok {
				defer c.Close()
			}
			d, err = d.WithNetboot(nb)
		}
		if err != nil {
			fmt.Fprintf(stderr, "isoinfo: -netboot %s: %v\n", *netboot, err)
			return 1
		}
	}
	if d.Warnings == nil {
		d.Warnings = []string{} // "warnings": [] rather than null, for scripts
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			fmt.Fprintln(stderr, "isoinfo:", err)
			return 1
		}
		return 0
	}
	printText(stdout, file, img, d)
	return 0
}

func printText(w io.Writer, file string, img *isosrc.Image, d *isosrc.Distro) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-12s %s\n", k+":", v)
		}
	}
	row("image", file)
	row("label", img.Label())
	row("os", fmt.Sprintf("%s %s (%s, %s)", d.Name, d.Version, d.Arch, d.Variant))
	row("os id", d.OSID)
	row("family", string(d.Family))
	row("kernel", d.Kernel)
	row("initrd", d.Initrd)
	row("netboot", strings.TrimSpace(d.NetbootKernel+" "+d.NetbootInitrd))
	row("shim", d.Shim)
	row("grub", d.GRUB)
	row("efi from", d.EFISource)
	row("repo root", d.RepoRoot)
	row("repos", strings.Join(d.Repos, " "))
	row("stage2", d.Stage2)
	row("answer file", d.AnswerFile)
	row("boot args", d.BootArgs)
	for _, b := range img.BootImages() {
		row("el torito", fmt.Sprintf("%s %s emulation, %d bytes %s", b.Platform, b.Emulation, b.Size, b.Path))
	}
	for _, wn := range d.Warnings {
		row("warning", wn)
	}
}
