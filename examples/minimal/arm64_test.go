package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/vmtest"
	"github.com/pxekit/pxekit/isosrc"
)

// The Debian 12 arm64 netboot installer from the
// debian-installer-12-netboot-arm64 package: the kernel and initrd, and the
// signed shim (bootnetaa64.efi) and network GRUB (grubaa64.efi) that an
// amd64 host cannot get from grub-efi-arm64-signed / shim-signed:arm64.
const debianNetbootARM64 = "/usr/lib/debian-installer/images/12/arm64/text"

// arm64Scenario is one AArch64 UEFI network boot against examples/minimal.
type arm64Scenario struct {
	name string
	vm   vmtest.VMConfig
	args []string // extra flags for minimal
	// siteDHCP runs the network's own DHCP server next to minimal's
	// proxyDHCP: "plain" hands out addresses only; "next-server" also
	// names minimal's address as next-server (siaddr), as the proxy
	// mode's start-up message tells operators of ARM64 clients to do.
	siteDHCP string
	// stages must appear in the server log before the answer file.
	stages []string
	// serial must appear on the VM's serial console.
	serial []string
	// grubPrompt: the scenario ends when GRUB stops at its prompt
	// without having asked for a menu (a known limitation, proved).
	grubPrompt bool
}

// TestFirmwareARM64 boots AAVMF (the AArch64 EDK II firmware) in
// qemu-system-aarch64 -M virt under TCG. Its PXE client sends DHCP option
// 93 = 11, and minimal must answer with the AArch64 shim and GRUB and a menu
// naming the arm64 kernel, until Debian 12's arm64 installer fetches its
// preseed.
func TestFirmwareARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("arm64 e2e: skipped in -short mode (emulates an AArch64 machine, minutes per scenario)")
	}
	vmtest.RequireARM64(t)
	for _, f := range []string{"debian-installer/arm64/linux", "debian-installer/arm64/grubaa64.efi"} {
		if _, err := os.Stat(filepath.Join(debianNetbootARM64, f)); err != nil {
			t.Skipf("arm64 e2e: skipped: Debian's arm64 netboot installer is not installed (Debian package debian-installer-12-netboot-arm64): %v", err)
		}
	}
	bin := buildMinimal(t)
	full := []string{"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150"}
	scenarios := []arm64Scenario{
		{
			name: "arm64-shim-grub-full",
			vm:   vmtest.VMConfig{Firmware: vmtest.UEFI, MAC: "52:54:00:a6:40:01"},
			args: full,
			stages: []string{
				`stage=dhcp mac=52:54:00:a6:40:01 .*arch="EFI ARM64".*detail=shimaa64.efi`,
				`stage=bootloader mac=52:54:00:a6:40:01 .*detail=shimaa64.efi`,
				`stage=bootloader mac=52:54:00:a6:40:01 .*detail=grubaa64.efi`,
				`stage=menu mac=52:54:00:a6:40:01`,
				`stage=kernel mac=52:54:00:a6:40:01 .*debian-installer/arm64/linux`,
				`stage=initrd mac=52:54:00:a6:40:01 .*debian-installer/arm64/initrd.gz`,
			},
			serial: []string{`Linux version [0-9].*aarch64|Linux version [0-9].*arm64`},
		},
		{
			// The network's own DHCP server hands out the address; pxekit
			// answers as proxyDHCP only. AAVMF and shim read the boot
			// server from the proxy offer.
			name:     "arm64-shim-grub-proxy",
			vm:       vmtest.VMConfig{Firmware: vmtest.UEFI, MAC: "52:54:00:a6:40:02"},
			siteDHCP: "next-server",
			stages: []string{
				`stage=dhcp mac=52:54:00:a6:40:02 .*arch="EFI ARM64".*detail=shimaa64.efi`,
				`stage=bootloader mac=52:54:00:a6:40:02 .*detail=shimaa64.efi`,
				`stage=bootloader mac=52:54:00:a6:40:02 .*detail=grubaa64.efi`,
				`stage=menu mac=52:54:00:a6:40:02`,
				`stage=kernel mac=52:54:00:a6:40:02 .*debian-installer/arm64/linux`,
			},
		},
		{
			// Without next-server, Debian 12's GRUB (2.06) has no TFTP
			// server: it takes it from the address server's ACK and
			// ignores the proxy offer that AAVMF and shim used, so it
			// never asks for grub.cfg. There is no ARM64 iPXE in Debian
			// to chainload instead, as x86 clients do.
			name:     "arm64-grub-proxy-no-next-server",
			vm:       vmtest.VMConfig{Firmware: vmtest.UEFI, MAC: "52:54:00:a6:40:04"},
			siteDHCP: "plain",
			stages: []string{
				`stage=bootloader mac=52:54:00:a6:40:04 .*detail=shimaa64.efi`,
				`stage=bootloader mac=52:54:00:a6:40:04 .*detail=grubaa64.efi`,
			},
			grubPrompt: true,
		},
		{
			// Microsoft's keys enrolled and Secure Boot enforced: only
			// Debian's Microsoft-signed shim starts, then the GRUB and the
			// kernel Debian signed.
			name: "arm64-secureboot-full",
			vm:   vmtest.VMConfig{Firmware: vmtest.UEFISecureBoot, MAC: "52:54:00:a6:40:03"},
			args: full,
			stages: []string{
				`stage=bootloader mac=52:54:00:a6:40:03 .*detail=shimaa64.efi`,
				`stage=bootloader mac=52:54:00:a6:40:03 .*detail=grubaa64.efi`,
				`stage=kernel mac=52:54:00:a6:40:03 .*debian-installer/arm64/linux`,
			},
			serial: []string{`UEFI Secure Boot is enabled`},
		},
	}
	var summary []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			took := runARM64Scenario(t, bin, sc)
			end := "answer file"
			if sc.grubPrompt {
				end = "GRUB prompt"
			}
			summary = append(summary, fmt.Sprintf("%-32s power-on to %s: %6.1f s", sc.name, end, took.Seconds()))
		})
	}
	for _, l := range summary {
		t.Log(l)
	}
}

func runARM64Scenario(t *testing.T, bin string, sc arm64Scenario) time.Duration {
	lab := vmtest.NewLab(t, vmtest.LabConfig{})
	switch sc.siteDHCP {
	case "plain":
		lab.StartDHCPServer(t, "udhcpd", vmtest.DHCPServerConfig{Router: lab.ServerIP()})
	case "next-server":
		startNextServerDHCP(t, lab)
	}
	args := append([]string{
		"-iface", lab.Iface(), "-os", "debian-12", "-netboot", debianNetbootARM64,
		"-console", "ttyAMA0,115200", "-dns", lab.ServerIP().String(),
		"-mirror", "http://" + lab.ServerIP().String() + ":8080/mirror/debian",
		"-demo-password", // a throw-away VM on the test's own network
	}, sc.args...)
	srv := lab.Start(t, "minimal", bin, args...)

	// A generous bound: under TCG an emulated AArch64 CPU loads a 33 MB
	// kernel and a 40 MB initrd over TFTP and starts the installer.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	if _, err := srv.WaitLog(ctx, regexp.MustCompile(`pxekit serving on`)); err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	sc.vm.Milestones = vmtest.ARM64Milestones()
	vm := lab.BootARM64(t, sc.vm)
	for _, st := range []string{"shimaa64.efi", "grubaa64.efi"} {
		vm.Watch("tftp-"+st, srv.LogPath(), regexp.MustCompile(`stage=bootloader .*detail=`+regexp.QuoteMeta(st)))
	}
	vm.Watch("server-kernel", srv.LogPath(), regexp.MustCompile(`stage=kernel `))
	vm.Watch("server-initrd", srv.LogPath(), regexp.MustCompile(`stage=initrd `))
	var took time.Duration
	if sc.grubPrompt {
		// GRUB starts within a minute or two even on a loaded host.
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Minute)
		defer pcancel()
		if _, err := vm.WaitSerial(pctx, regexp.MustCompile(`(?m)^\r?grub> `)); err != nil {
			t.Fatalf("GRUB did not stop at its prompt: %v\n%s", err, vm.TimelineString())
		}
		took = vm.Mark("grub-prompt")
		time.Sleep(5 * time.Second) // a late menu request would show now
		log, err := os.ReadFile(srv.LogPath())
		require.NoError(t, err)
		require.NotRegexp(t, regexp.MustCompile(`stage=menu `), string(log), "GRUB read a menu after all: the limitation is gone, make this a full scenario")
	} else {
		if _, err := srv.WaitLog(ctx, answerFetched); err != nil {
			t.Fatalf("the installer never fetched its answer file: %v\n%s", err, vm.TimelineString())
		}
		took = vm.Mark("answer")
	}
	log, err := os.ReadFile(srv.LogPath())
	require.NoError(t, err)
	for _, st := range sc.stages {
		require.Regexp(t, regexp.MustCompile(st), string(log), "server log lacks %q", st)
	}
	serial, err := os.ReadFile(vm.SerialPath())
	require.NoError(t, err)
	for _, s := range sc.serial {
		require.Regexp(t, regexp.MustCompile(s), string(serial), "serial console lacks %q", s)
	}
	t.Logf("%s: done after %s\n%s", sc.name, took.Round(100*time.Millisecond), vm.TimelineString())
	return took
}

// startNextServerDHCP runs BusyBox udhcpd as the network's DHCP server,
// naming the lab's server as next-server (siaddr) but no boot file: what a
// site's DHCP server needs for ARM64 clients of a proxyDHCP boot server,
// because their GRUB reads its TFTP server from this server's ACK.
func startNextServerDHCP(t *testing.T, lab *vmtest.Lab) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("arm64 e2e: skipped: busybox (udhcpd) not installed (Debian package busybox)")
	}
	srv := lab.ServerIP().String()
	conf := filepath.Join(lab.OutDir(), "udhcpd.conf")
	cfg := strings.Join([]string{
		"start 10.77.0.100", "end 10.77.0.199", "interface " + lab.Iface(), "max_leases 100",
		"lease_file " + filepath.Join(lab.OutDir(), "udhcpd.leases"),
		"pidfile " + filepath.Join(lab.OutDir(), "udhcpd.pid"),
		"siaddr " + srv,
		"option subnet 255.255.255.0", "option dns " + srv, "option router " + srv, "option lease 3600",
	}, "\n") + "\n"
	require.NoError(t, os.WriteFile(conf, []byte(cfg), 0o644))
	// -f: foreground; -a 10: a 10 ms ARP probe before each offer.
	lab.Start(t, "udhcpd", bb, "udhcpd", "-f", "-a", "10", conf)
}

// TestARM64NetbootTree is the part of TestFirmwareARM64 that needs no VM: a
// Debian arm64 netboot tree alone makes minimal serve its kernel in the
// menus and its signed shim and GRUB as the AArch64 loaders (they were
// never looked for there, and the menus named the amd64 kernel, so minimal
// refused to start with the arm64 tree).
func TestARM64NetbootTree(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"debian-installer/arm64/linux":           "arm64 kernel",
		"debian-installer/arm64/initrd.gz":       "arm64 initrd",
		"debian-installer/arm64/bootnetaa64.efi": "arm64 shim",
		"debian-installer/arm64/grubaa64.efi":    "arm64 grub",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	m := startMinimal(t, isosrc.HTTPLimits{}, "-os", "debian-12", "-netboot", dir, "-demo-password", "-console", "ttyAMA0,115200")

	// Debian's arm64 GRUB asks for its menu under its prefix.
	code, menu := get(t, m.http+"/debian-installer/arm64/grub/grub.cfg")
	require.Equal(t, 200, code)
	// The paths start with the HTTP root GRUB sets when it can load its
	// http module (empty otherwise: TFTP), when the host serves one.
	assert.Regexp(t, `linux ("\$\{pxekit_http\}")?/boot/debian-installer/arm64/linux `, menu)
	assert.Contains(t, menu, "console=ttyAMA0,115200")
	assert.Regexp(t, `initrd ("\$\{pxekit_http\}")?/boot/debian-installer/arm64/initrd\.gz`, menu)
	assert.NotContains(t, menu, "amd64")
	for name, want := range map[string]string{
		"/" + bootmenu.LoaderShimAA64:        "arm64 shim",
		"/" + bootmenu.LoaderGRUBAA64:        "arm64 grub",
		"/boot/debian-installer/arm64/linux": "arm64 kernel",
	} {
		code, body := get(t, m.http+name)
		assert.Equal(t, 200, code, name)
		assert.Equal(t, want, body, name)
	}
	assert.Contains(t, m.stdout.String(), "shimaa64.efi <- netboot:debian-installer/arm64/bootnetaa64.efi")
}
