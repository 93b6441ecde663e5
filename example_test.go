package pxekit_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// A proxyDHCP + TFTP + HTTP server that installs Rocky Linux 9 from its ISO,
// next to the network's own DHCP server. It stops where a program would call
// Listen and Serve on each server, and asks its parts instead.
func Example() {
	iface, ip := "eth0", netip.MustParseAddr("192.0.2.10") // a real host: dhcpsrv.DefaultInterface()
	base := "http://" + ip.String() + ":8080/"

	// The ISO, read in place. Its namespace gets a prefix so that the
	// loaders can sit at the root, where DHCP answers name them.
	media, err := isosrc.OpenMedia("isosrc/testdata/rocky-9.0-mini.iso", "", "", isosrc.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	defer media.Close()
	media.Prefix = "os/"
	bootDir := media.Prefix + "boot/" // kernel and initrd, over TFTP and HTTP
	d := media.Distro                 // what the ISO holds: rocky-9.0, its kernel, its shim and GRUB

	// The kickstart, and what the kernel line must say to reach it.
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq7 ops@example" // yours
	spec := &answerfile.Spec{Hostname: "node1", Disk: answerfile.Disk{Wipe: true},
		Users: []answerfile.User{{Name: "ops", Sudo: true, SSHKeys: []string{key}}}}
	set, err := answerfile.Build(d.OSID, spec, base+"answer/")
	if err != nil {
		log.Fatal(err)
	}

	// Loaders: the ISO's shim and GRUB (under Secure Boot only that pair
	// boots Rocky's kernel), pxelinux and iPXE from the host's packages.
	own, err := media.Loaders()
	if err != nil {
		log.Fatal(err)
	}
	loaders, err := bootmenu.FindLoaders(bootmenu.LoaderSource(own), "/")
	if err != nil {
		log.Fatal(err)
	}

	// The menu: install from the ISO's tree with the kickstart, or boot the disk.
	repo, err := media.RepoURL(base, d.Family, "")
	if err != nil {
		log.Fatal(err)
	}
	kernel, initrds := d.BootFiles()
	install, err := bootmenu.InstallEntry(d.OSID, bootDir, bootmenu.InstallInput{
		RepoURL: repo, AnswerURL: set.URL, Kernel: kernel, Initrds: initrds,
		InstallerNet: set.Installer, // what the installer needs before it reads the kickstart
	})
	if err != nil {
		log.Fatal(err)
	}
	dialect, err := loaders.Dialect(d.OSID) // the menu is read by the ISO's GRUB
	if err != nil {
		log.Fatal(err)
	}
	menu := &bootmenu.Menu{Timeout: 5 * time.Second, Entries: []bootmenu.Entry{install, bootmenu.LocalEntry()}}
	menus, err := bootmenu.RenderAll(menu, bootmenu.Options{HTTPBase: base, GRUBDialect: dialect})
	if err != nil {
		log.Fatal(err)
	}

	// TFTP: kernel and initrd for pxelinux, each loader's menu by the name
	// it asks for (GRUB's grub.cfg in any directory), the loaders.
	tftp := tftpsrv.NewServeMux()
	_ = tftp.Handle(bootDir, tftpsrv.StripPrefix(bootDir, tftpsrv.FileServer(media.BootTree())))
	_ = tftp.HandleFunc("/", func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		if menu, ok := menus.Lookup(r.Name); ok {
			_, _ = w.Write(menu)
			return
		}
		tftpsrv.FileServer(loaders).ServeTFTP(w, r)
	})

	// HTTP: the ISO (its tree, the file, kernel and initrd), the answer
	// files, and menus and loaders as over TFTP (iPXE, UEFI HTTP boot).
	mux := http.NewServeMux()
	mux.Handle("/"+media.Prefix, media.Handler())
	for name, data := range set.Files {
		mux.HandleFunc("/answer/"+name, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data) })
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if menu, ok := menus.Lookup(r.URL.Path); ok {
			_, _ = w.Write(menu)
			return
		}
		isosrc.FileServer(loaders).ServeHTTP(w, r)
	})
	web := isosrc.ContentOnly(mux) // GET and HEAD of sane paths only: anyone on the segment may ask

	// proxyDHCP: boot files only, naming only loaders that are served; the
	// network's DHCP server keeps handing out the addresses.
	boot := &dhcpsrv.BootTable{HTTPBase: base, Files: loaders}
	dhcp, err := dhcpsrv.New(dhcpsrv.Config{Interface: iface, ServerIP: ip, Mode: dhcpsrv.ModeProxy, Boot: boot})
	if err != nil {
		log.Fatal(err)
	}
	// A program now opens every port first (dhcp.Listen, tftpsrv.Listen,
	// net.Listen) so that a port it cannot have stops it before it says it
	// serves, then serves: dhcp.Serve, tftpsrv.Server.Serve, isosrc.NewHTTPServer.

	// UEFI firmware is sent to iPXE (the host's ipxe package; without it to
	// the ISO's shim, whose GRUB stops at grub> because the other server's
	// ACK names no TFTP server); iPXE asks again and gets the menu over HTTP.
	fw, _ := boot.Decide(dhcpsrv.Client{Arch: dhcpsrv.ArchEFIX64, PXE: true, Proxy: true})
	ipxe, _ := boot.Decide(dhcpsrv.Client{Arch: dhcpsrv.ArchEFIX64, PXE: true, IPXE: true, Proxy: true})
	fmt.Printf("UEFI PXE: TFTP %v, file served: %v\n", dhcp.ServerIP(), loaders.Has(fw.File))
	fmt.Println("iPXE:", ipxe.File)
	// Each file as its client fetches it, and one line of it.
	for _, get := range [][2]string{{"/boot.ipxe", "kernel "}, {"/answer/ks.cfg", "#"}, {"/" + bootDir + kernel, ""}} {
		w := httptest.NewRecorder()
		web.ServeHTTP(w, httptest.NewRequest(http.MethodGet, get[0], nil))
		fmt.Println("GET", get[0], w.Code, lineWith(w.Body.String(), get[1]))
	}
	// Output:
	// UEFI PXE: TFTP 192.0.2.10, file served: true
	// iPXE: http://192.0.2.10:8080/boot.ipxe
	// GET /boot.ipxe 200 kernel http://192.0.2.10:8080/os/boot/images/pxeboot/vmlinuz initrd=initrd.img inst.repo=http://192.0.2.10:8080/os/iso/ inst.ks=http://192.0.2.10:8080/answer/ks.cfg BOOTIF=01-${netX/mac:hexhyp}
	// GET /answer/ks.cfg 200 #version=RHEL9
	// GET /os/boot/images/pxeboot/vmlinuz 200 kernel
}

// lineWith returns the first line of s that starts with prefix.
func lineWith(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSuffix(line, "\n")
		}
	}
	return ""
}
