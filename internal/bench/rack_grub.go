package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/simclient"
	"golang.org/x/sys/unix"
)

// The simulated GRUB runs what a grub.cfg does before its entries, as
// Debian's signed grubnetx64.efi would: "set NAME=VALUE", "insmod MOD" and
// "if COND; then ... [else ...] fi" with COND "test -d (PROTO,...)/..." or
// "insmod MOD". pxekit's menus for that GRUB (bootmenu.GRUBDialect.
// HTTPInsmod) test an (http,...) device there, which makes GRUB load its
// http module, and name the HTTP root in a variable that kernel and initrd
// paths start with; the classic menu has neither, so its paths stay bare
// (TFTP).

// grubModPrefix is where the host's signed network GRUB looks for modules:
// $prefix (/grub on the TFTP server it came from) + /x86_64-efi/.
const grubModPrefix = "grub/x86_64-efi/"

// grubIf matches the conditions the simulated GRUB evaluates.
var grubIf = regexp.MustCompile(`^if\s+(.*?)\s*;\s*then$`)

// maxGRUBVars bounds the variables a menu from the network may set.
const maxGRUBVars = 64

// grubModName is what GRUB takes for a module name here.
var grubModName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// grubTopLevel runs the top-level commands of cfg, outside menu entries,
// loading modules with insmod, and returns the variables set. As in GRUB
// 2.06, insmod succeeds as a condition even when the module did not load
// (its status is always 0); opening an (http,...) device, as test -d
// does, loads the http module when it is not loaded yet and fails when
// that fails. Conditions nest. Other commands are ignored; an if without
// fi, or a fi without if, is an error.
func grubTopLevel(cfg string, insmod func(mod string) (bool, error)) (map[string]string, error) {
	vars := map[string]string{}
	loaded := map[string]bool{}
	load := func(mod string) (bool, error) {
		if !grubModName.MatchString(mod) {
			return false, nil
		}
		if !loaded[mod] {
			ok, err := insmod(mod)
			if err != nil {
				return false, fmt.Errorf("insmod %s: %w", mod, err)
			}
			loaded[mod] = ok
		}
		return loaded[mod], nil
	}
	// device reports whether GRUB can open the device a path names.
	device := func(p string) (bool, error) {
		proto, ok := strings.CutPrefix(p, "(")
		if !ok {
			return true, nil // $root: the TFTP server
		}
		proto, _, _ = strings.Cut(proto, ",")
		switch proto {
		case "tftp":
			return true, nil
		case "http":
			return load("http")
		}
		return false, nil
	}
	var conds []bool // the condition of each open if; true runs the branch
	depth := 0       // braces of menu entries and submenus
	running := func() bool {
		for _, c := range conds {
			if !c {
				return false
			}
		}
		return true
	}
	for n, line := range strings.Split(cfg, "\n") {
		line = strings.TrimSpace(line)
		if depth > 0 {
			depth += strings.Count(line, "{") - strings.Count(line, "}")
			continue
		}
		if m := grubIf.FindStringSubmatch(line); m != nil {
			w, err := simclient.GRUBWords(m[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			ok := false
			if running() {
				switch {
				case len(w) == 2 && w[0] == "insmod":
					_, err = load(w[1])
					ok = true
				case len(w) == 3 && w[0] == "test" && (w[1] == "-d" || w[1] == "-e"):
					ok, err = device(w[2])
				}
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", n+1, err)
				}
			}
			conds = append(conds, ok)
			continue
		}
		w, err := simclient.GRUBWords(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if len(w) == 0 {
			continue
		}
		switch w[0] {
		case "menuentry", "submenu":
			depth = strings.Count(line, "{") - strings.Count(line, "}")
		case "else":
			if len(conds) == 0 {
				return nil, fmt.Errorf("line %d: else without if", n+1)
			}
			conds[len(conds)-1] = !conds[len(conds)-1]
		case "fi":
			if len(conds) == 0 {
				return nil, fmt.Errorf("line %d: fi without if", n+1)
			}
			conds = conds[:len(conds)-1]
		case "insmod":
			if len(w) == 2 && running() {
				if _, err := load(w[1]); err != nil {
					return nil, fmt.Errorf("line %d: %w", n+1, err)
				}
			}
		case "set":
			if len(w) != 2 || !running() {
				continue
			}
			name, val, _ := strings.Cut(w[1], "=")
			if _, ok := vars[name]; !ok && len(vars) >= maxGRUBVars {
				return nil, fmt.Errorf("line %d: more than %d variables", n+1, maxGRUBVars)
			}
			vars[name] = simclient.ExpandGRUBVars(val, vars)
		}
	}
	if len(conds) > 0 {
		return nil, fmt.Errorf("%d if without fi", len(conds))
	}
	return vars, nil
}

// grubInsmod is the simulated GRUB's module loader: it reads $prefix's
// module over its TFTP (blksize 1024, lock-step, tsize). Under Secure Boot,
// Debian's GRUB reads the file too and its shim_lock verifier then refuses
// it ("prohibited by secure boot policy"); on OVMF the server sent the whole
// 9 KiB module before the refusal, so the simulated one reads it as well and
// then fails. A module the bench expects (in the job's sums) must arrive
// intact; one it does not expect may be missing, and the load then fails as
// GRUB's does.
func (c *fleetClient) grubInsmod(ctx context.Context, mod string) (bool, error) {
	name := grubModPrefix + mod + ".mod"
	want, expected := c.job.Sums[name]
	got, err := c.tftp(ctx, "/"+name, simclient.TFTPOptions{BlockSize: 1024, TSize: true}, nil)
	switch {
	case err != nil && expected:
		return false, fmt.Errorf("tftp %s: %w", name, err)
	case err != nil:
		return false, nil
	case expected && (got.Size != want.Size || got.CRC != want.CRC):
		return false, fmt.Errorf("tftp %s: %d bytes, checksum %08x; want %d bytes, %08x", name, got.Size, got.CRC, want.Size, want.CRC)
	}
	return !c.job.SecureBoot, nil
}

// rackModuleSum adds the host's GRUB http module to sums when the host's
// loaders include it (bootmenu pairs it with the host's GRUB only), so the
// simulated GRUB can check what it loads.
func rackModuleSum(sums map[string]fleetSum) error {
	set, err := bootmenu.FindLoaders(bootmenu.LoaderSource{}, "/")
	if err != nil || !set.Has(bootmenu.LoaderGRUBHTTPMod) {
		return err
	}
	b, err := fs.ReadFile(set, bootmenu.LoaderGRUBHTTPMod)
	if err != nil {
		return err
	}
	sums[bootmenu.LoaderGRUBHTTPMod] = fleetSum{Size: int64(len(b)), CRC: crc32.Checksum(b, castagnoli)}
	return nil
}

// grubHTTPClient fetches kernel and initrd with GRUB's TCP parameters:
// GRUB 2.06 sends no MSS option (so the server sends 536-byte segments)
// and offers a fixed 8 KiB window without scaling (grub-core/net/tcp.c).
// The client socket asks for the same: MSS 536 and a receive buffer that
// gives about an 8 KiB window. What it cannot model is the firmware's cost
// per packet: on OVMF under QEMU (TCG), one client's GRUB read the 8 MB
// kernel at about 3.3 MB/s over HTTP and 5.3 MB/s over TFTP, while here
// both are many times faster and HTTP far ahead of TFTP. Read the rack
// suite's Secure-Boot-off figures as an upper bound for the HTTP case.
func (c *fleetClient) grubHTTPClient() *http.Client {
	return c.dialClient(5*time.Minute, grubSocket)
}

// grubSocket sets a dialing socket up like GRUB's TCP (see grubHTTPClient).
func grubSocket(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		// Linux doubles SO_RCVBUF and advertises about half of it.
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 8192); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, 536)
	})
	if err != nil {
		return err
	}
	return serr
}
