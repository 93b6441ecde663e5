package vmtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Debian 12 package paths of the boot files of the baseline setup.
const (
	debGRUBNet   = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" // grub-efi-amd64-signed; prefix /grub
	debShim      = "/usr/lib/shim/shimx64.efi.signed"                      // shim-signed
	debPXELINUX  = "/usr/lib/PXELINUX/pxelinux.0"                          // pxelinux
	debSyslinux  = "/usr/lib/syslinux/modules/bios"                        // syslinux-common
	debInstaller = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64"
	debSNPOnly   = "/usr/lib/ipxe/snponly.efi" // ipxe
)

// TestBaselineDnsmasq measures the conventional setup the project is
// compared with: dnsmasq for DHCP and TFTP (boot loader, kernel and initrd
// all over TFTP) plus a plain HTTP server for the preseed file, booting
// Debian 12's netboot installer. It is a measurement, not a regression
// test, so it runs only with PXEKIT_VM_BASELINE=1 (and needs dnsmasq-base
// and the boot-file packages). Run it alone: it boots three VMs in turn.
func TestBaselineDnsmasq(t *testing.T) {
	if os.Getenv("PXEKIT_VM_BASELINE") == "" {
		t.Skip("set PXEKIT_VM_BASELINE=1 to measure the dnsmasq + TFTP baseline")
	}
	Require(t)
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (Debian package dnsmasq-base)")
	}
	for _, f := range []string{debGRUBNet, debShim, debPXELINUX, debSyslinux + "/ldlinux.c32", debInstaller + "/linux"} {
		if !exists(f) {
			t.Skipf("%s missing (Debian packages grub-efi-amd64-signed shim-signed pxelinux syslinux-common debian-installer-12-netboot-amd64)", f)
		}
	}
	cases := []struct {
		name     string
		fw       Firmware
		bootFile string
		httpBoot bool
	}{
		{"uefi", UEFI, "grubx64.efi", false},
		{"uefi-secureboot", UEFISecureBoot, "shimx64.efi", false},
		{"bios", BIOS, "pxelinux.0", false},
		// Debian's signed GRUB finds no configuration when loaded over
		// HTTP, so UEFI HTTP boot chainloads iPXE, which fetches a script,
		// the kernel and the initrd over HTTP.
		{"uefi-http", UEFI, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lab := NewLab(t, LabConfig{})
			root := filepath.Join(lab.OutDir(), "root")
			layoutBaseline(t, root, lab.ServerIP().String())
			conf := writeDnsmasqConf(t, lab, root, tc.bootFile)
			dm := lab.Start(t, "dnsmasq", dnsmasq, "--keep-in-foreground", "--conf-file="+conf)
			httpLog := serveHTTP(t, lab, root)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if _, err := dm.WaitLog(ctx, regexp.MustCompile(`DHCP, IP range|TFTP root`)); err != nil {
				t.Fatal(err)
			}

			vm := lab.Boot(t, VMConfig{Firmware: tc.fw, HTTPBoot: tc.httpBoot})
			vm.Watch("tftp-bootloader", dm.LogPath(), regexp.MustCompile(`sent \S+/(grubx64|shimx64)\.efi|sent \S+/pxelinux\.0`))
			vm.Watch("tftp-menu", dm.LogPath(), regexp.MustCompile(`sent \S+/(grub/grub\.cfg|pxelinux\.cfg/default)`))
			vm.Watch("tftp-linux", dm.LogPath(), regexp.MustCompile(`sent \S+/amd64/linux`))
			vm.Watch("tftp-initrd", dm.LogPath(), regexp.MustCompile(`sent \S+/amd64/initrd\.gz`))
			vm.Watch("http-snponly", httpLog, regexp.MustCompile(`GET /snponly\.efi`))
			vm.Watch("http-linux", httpLog, regexp.MustCompile(`GET /debian-installer/amd64/linux`))
			vm.Watch("http-initrd", httpLog, regexp.MustCompile(`GET /debian-installer/amd64/initrd\.gz`))
			vm.Watch("preseed-GET", httpLog, regexp.MustCompile(`GET /preseed\.cfg`))

			menu := regexp.MustCompile(`GNU GRUB|pxekit baseline|pxekit-baseline-ipxe`)
			if _, err := vm.WaitSerial(ctx, menu); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			if err := vm.Screenshot(filepath.Join(lab.OutDir(), "menu.png")); err != nil {
				t.Error(err)
			}
			if _, err := WaitFile(ctx, httpLog, regexp.MustCompile(`GET /preseed\.cfg`)); err != nil {
				t.Fatal(err)
			}
			t.Logf("preseed GET %.1fs after power-on", vm.Mark("done").Seconds())
		})
	}
}

// layoutBaseline puts the boot files where dnsmasq (TFTP) and the HTTP
// server expect them. The installer's kernel and initrd are symlinked, not
// copied; both servers follow the links.
func layoutBaseline(t *testing.T, root, serverIP string) {
	t.Helper()
	for _, d := range []string{"grub", "pxelinux.cfg", "debian-installer/amd64"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	link := func(src, dst string) {
		require.NoError(t, os.Symlink(src, filepath.Join(root, dst)))
	}
	link(debGRUBNet, "grubx64.efi")
	link(debShim, "shimx64.efi")
	link(debPXELINUX, "pxelinux.0")
	link(debSNPOnly, "snponly.efi")
	for _, m := range []string{"ldlinux", "menu", "libutil", "libcom32"} {
		link(debSyslinux+"/"+m+".c32", m+".c32")
	}
	link(debInstaller+"/linux", "debian-installer/amd64/linux")
	link(debInstaller+"/initrd.gz", "debian-installer/amd64/initrd.gz")

	preseed := "http://" + serverIP + ":8080/preseed.cfg"
	args := "auto=true priority=critical netcfg/get_nameservers=" + serverIP + " console=ttyS0,115200n8"
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(body), 0o644))
	}
	// GRUB reads the rest of a line like a shell: quote the URL.
	write("grub/grub.cfg", fmt.Sprintf(`set timeout=3
set default=0
menuentry 'pxekit baseline: Debian 12 installer' {
	linux /debian-installer/amd64/linux %s "url=%s" ---
	initrd /debian-installer/amd64/initrd.gz
}
`, args, preseed))
	write("pxelinux.cfg/default", fmt.Sprintf(`SERIAL 0 115200
UI menu.c32
PROMPT 0
TIMEOUT 30
MENU TITLE pxekit baseline
DEFAULT install
LABEL install
  MENU LABEL Debian 12 installer
  KERNEL debian-installer/amd64/linux
  INITRD debian-installer/amd64/initrd.gz
  APPEND %s url=%s ---
`, args, preseed))
	write("boot.ipxe", fmt.Sprintf(`#!ipxe
echo pxekit-baseline-ipxe
kernel http://%[1]s:8080/debian-installer/amd64/linux initrd=initrd.gz %[2]s url=%[3]s ---
initrd --name initrd.gz http://%[1]s:8080/debian-installer/amd64/initrd.gz
boot
`, serverIP, args, preseed))
	write("preseed.cfg", "d-i debian-installer/locale string en_US.UTF-8\nd-i keyboard-configuration/xkb-keymap select us\n")
}

// writeDnsmasqConf writes a DHCP + TFTP configuration: BIOS clients get
// PXELINUX, x86-64 UEFI clients uefiBoot. No DNS service (port=0); the
// installer is told its name server on the kernel command line.
func writeDnsmasqConf(t *testing.T, lab *Lab, root, uefiBoot string) string {
	t.Helper()
	net := strings.TrimSuffix(lab.ServerIP().String(), ".1")
	conf := fmt.Sprintf(`port=0
interface=%[1]s
bind-interfaces
user=root
group=root
pid-file=%[2]s/dnsmasq.pid
log-facility=-
log-dhcp
dhcp-range=%[3]s.100,%[3]s.199,255.255.255.0,1h
dhcp-authoritative
no-ping
dhcp-leasefile=%[2]s/dnsmasq.leases
dhcp-option=option:dns-server,%[4]s
dhcp-match=set:bios,option:client-arch,0
dhcp-match=set:efi64,option:client-arch,7
dhcp-boot=tag:bios,pxelinux.0
dhcp-userclass=set:ipxe,iPXE
dhcp-boot=tag:efi64,tag:!ipxe,%[5]s
# UEFI HTTP boot (arch 16): a URL as boot file, and option 60 echoed.
dhcp-match=set:efihttp,option:client-arch,16
dhcp-boot=tag:efihttp,http://%[4]s:8080/snponly.efi
dhcp-option-force=tag:efihttp,option:vendor-class,HTTPClient
# The iPXE that UEFI HTTP boot loaded gets its script, not a loader again.
dhcp-boot=tag:efi64,tag:ipxe,http://%[4]s:8080/boot.ipxe
enable-tftp=%[1]s
tftp-root=%[6]s
`, lab.Iface(), lab.OutDir(), net, lab.ServerIP(), uefiBoot, root)
	path := filepath.Join(lab.OutDir(), "dnsmasq.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	return path
}

// serveHTTP serves root on the lab's server address, port 8080, from the
// test process, logging one line per request to OutDir/http.log.
func serveHTTP(t *testing.T, lab *Lab, root string) string {
	t.Helper()
	ln, err := lab.Listen("tcp4", lab.ServerIP().String()+":8080")
	require.NoError(t, err)
	logPath := filepath.Join(lab.OutDir(), "http.log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	var mu sync.Mutex
	files := http.FileServer(http.Dir(root))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fmt.Fprintf(f, "%s %s %s %s\n", time.Now().Format(time.RFC3339Nano), r.RemoteAddr, r.Method, r.URL)
		mu.Unlock()
		files.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = f.Close()
	})
	return logPath
}
