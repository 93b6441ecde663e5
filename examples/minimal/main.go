// Command minimal installs one operating system over the network: proxyDHCP,
// TFTP for the boot loaders, HTTP for the install tree, the menu and the
// answer file, all from one ISO.
//
//	sudo go run ./examples/minimal -iso Rocky-9.iso
//
// This first version only checks its flags: the packages it composes are
// being built. It says so and exits with status 2.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("minimal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iso := fs.String("iso", "", "distribution ISO to install from")
	mode := fs.String("dhcp", "proxy", "DHCP mode: proxy (default, never hands out addresses), full or off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch *mode {
	case "proxy", "full", "off":
	default:
		fmt.Fprintf(stderr, "minimal: -dhcp %q: want proxy, full or off\n", *mode)
		return 2
	}
	fmt.Fprintf(stderr, "minimal: not built yet: would serve %q with DHCP mode %s\n", *iso, *mode)
	return 2
}
