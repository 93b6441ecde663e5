package bootmenu

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzRenderValue asserts that no argument value or title can break out of
// its line in any renderer: either Render refuses it (ErrUnsafe/ErrInvalid)
// or the output has exactly the lines of a benign menu, and in GRUB the
// value reaches the linux command as exactly one word.
func FuzzRenderValue(f *testing.F) {
	for _, s := range []string{
		"plain", "a b", "ds=nocloud-net;s=http://10.0.0.1/seed/", "a\nb", "a\rb", "x\x00", `"`, "'", `\`,
		"${net0/mac}", "$x", "a && reboot", "|| shell", "#comment", "}", "{", "é", "\u2028", "-opt", "*?[",
		"}\nmenuentry evil {\n\tlinux /evil\n}", "\nLABEL evil\n  KERNEL evil", "\n:evil\nshell",
	} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, value, title string) {
		m := fuzzMenu(value, title)
		for _, k := range Kinds() {
			b, err := Render(m, k, Options{PXELinuxUI: "menu.c32"})
			if err != nil {
				if !errors.Is(err, ErrUnsafe) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s: error wraps no sentinel: %v", k, err)
				}
				continue
			}
			ref, _ := Render(fuzzMenu("v", "t"), k, Options{PXELinuxUI: "menu.c32"})
			if got, want := strings.Count(string(b), "\n"), strings.Count(string(ref), "\n"); got != want {
				t.Fatalf("%s: %q/%q changed the line count %d -> %d:\n%s", k, value, title, want, got, b)
			}
			if k == GRUB {
				words := linuxWords(t, b)
				if len(words) != 3 || words[2] != "v="+value {
					t.Fatalf("GRUB: value %q arrived as %q", value, words)
				}
			}
			if k == IPXE && strings.Count(string(b), "${") != strings.Count(string(ref), "${") {
				t.Fatalf("iPXE: %q/%q added an expansion:\n%s", value, title, b)
			}
		}
	})
}

func fuzzMenu(value, title string) *Menu {
	return &Menu{Title: title, Timeout: 1, Entries: []Entry{
		{ID: "x", Title: title, Kernel: "k", Args: []Arg{KV("v", value)}},
		LocalEntry(),
	}}
}

// FuzzParseConfigName checks that any requested name either parses to a
// request that round-trips through the name lists, or is refused cleanly.
func FuzzParseConfigName(f *testing.F) {
	for _, s := range []string{
		"/grub/grub.cfg", "/grub/grub.cfg-01-52-54-00-e2-e0-01", "grub.cfg-0A4D008D", "grub.cfg-0",
		"pxelinux.cfg/default", "pxelinux.cfg/01-52-54-00-e2-e0-01", "pxelinux.cfg/0A4D", "pxelinux.cfg/0a4d",
		"pxelinux.cfg/44454c4c-3000-1046", "../pxelinux.cfg/default", "grub.cfg-01-zz-54-00-e2-e0-01", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		r, err := ParseConfigName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		switch {
		case r.Default:
		case r.MAC != nil:
			if !r.Matches(r.MAC, r.Prefix.Addr()) {
				t.Fatalf("%q: request does not match its own MAC", name)
			}
		case r.Prefix.IsValid():
			if !r.Matches(nil, r.Prefix.Addr()) {
				t.Fatalf("%q: request does not match its own prefix", name)
			}
		default:
			t.Fatalf("%q: parsed to an empty request", name)
		}
	})
}

// FuzzInstallArgsNetwork feeds arbitrary names to the network inputs: they
// are refused with a sentinel error or arrive as whole values, and the
// colon-separated ip= word keeps its fields (a name cannot shift the
// interface or the autoconf method).
func FuzzInstallArgsNetwork(f *testing.F) {
	for _, s := range []string{"db1", "a:b", "a b", "x\ny", "eth0", "", "-", "a.b", `"`, "10.0.0.1", "::1"} {
		f.Add(s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, host, domain, iface, ns string) {
		for _, os := range []string{"debian-12", "rocky-9.0", "ubuntu-24.04"} {
			in := InstallInput{
				AnswerURL:    "http://h/a",
				RepoURL:      "http://h/u.iso",
				InstallerNet: InstallerNet{Hostname: host, Domain: domain, Interface: iface, Address: netip.MustParsePrefix("192.0.2.5/24")},
			}
			if a, err := netip.ParseAddr(ns); err == nil {
				in.Nameservers = []netip.Addr{a}
			}
			args, err := InstallArgs(os, in)
			if err != nil {
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsafe) {
					t.Fatalf("%s: error wraps no sentinel: %v", os, err)
				}
				continue
			}
			for _, a := range args {
				if a.Key == "ip" {
					f := strings.Split(a.Value, ":")
					if (len(f) != 7 && len(f) != 8) || f[4] != host || f[5] != iface {
						t.Fatalf("%s: ip=%s from host %q iface %q", os, a.Value, host, iface)
					}
				}
				if a.Key == "netcfg/get_hostname" && a.Value != host && host != "" {
					t.Fatalf("hostname %q arrived as %q", host, a.Value)
				}
			}
		}
	})
}
