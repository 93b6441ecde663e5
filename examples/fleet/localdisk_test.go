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

	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/vmtest"
)

// localDiskCase is one machine of TestFirmwareLocalDisk.
type localDiskCase struct {
	name     string
	firmware vmtest.Firmware
	mac      string
	// listed hosts are in the inventory and reported installed before
	// they boot; the others are unknown MACs under "unknown: local".
	listed bool
}

var localDiskCases = []localDiskCase{
	{name: "uefi", firmware: vmtest.UEFI, mac: "52:54:00:1d:00:01", listed: true},
	{name: "bios", firmware: vmtest.BIOS, mac: "52:54:00:1d:00:02", listed: true},
	{name: "unknown-uefi", firmware: vmtest.UEFI, mac: "52:54:00:1d:00:99"},
}

// ovmfFrontPage is OVMF starting its setup front page: what it does when a
// network boot option returns EFI_SUCCESS (GRUB's "exit"), instead of
// trying the next boot option. It waits there for a key.
var ovmfFrontPage = regexp.MustCompile(`starting Boot\w+ "UiApp"`)

// TestFirmwareLocalDisk is the other half of install-once on real firmware:
// a machine whose disk holds an installed system still network-boots first
// (boot order: NIC, then disk), fleet's gate sends it to its disk, and the
// disk's own system comes up. The disk is what an installer leaves on a GPT
// disk (vmtest.InstalledDisk: Debian's signed shim and GRUB at the
// removable path on the ESP, GRUB in a bios_grub partition for BIOS). Each
// machine passes when that system prints its marker and names the firmware
// that started it; the seconds from power-on are logged.
func TestFirmwareLocalDisk(t *testing.T) {
	requireVMs(t)
	needHostLoaders(t)
	needTool(t, "busybox")
	bin, lab, server := e2eLab(t)
	dir := t.TempDir()
	// No machine installs here, so the profile's netboot tree may be a
	// stand-in; each machine checks below that it was never sent it.
	fakeNetboot(t, filepath.Join(dir, "nb"))
	var hosts strings.Builder
	for _, c := range localDiskCases {
		if c.listed {
			fmt.Fprintf(&hosts, "  - {mac: %q, hostname: disk-%s, profile: debian12}\n", c.mac, c.name)
		}
	}
	inventory := e2eInventory(t, dir, "local", testHash, "nb", server, hosts.String())

	ctx, cancel := testContext(t, 40*time.Minute)
	defer cancel()
	srv := startLabFleet(ctx, t, lab, nil, bin, "-inventory", inventory, "-iface", lab.Iface(),
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150", "-dns", server, "-progress", "log")

	// Every listed host reports completion through the real endpoint, as
	// its installer's late command would.
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"
	for _, c := range localDiskCases {
		if !c.listed {
			continue
		}
		postReport(ctx, t, lab, server, c.mac, tokenOf(t, state, c.mac), reportJSON("disk-"+c.name, "ok", map[string]bool{"user ops": true}))
		requireState(ctx, t, lab, server, c.mac, "installed")
	}

	var summary strings.Builder
	for _, c := range localDiskCases {
		t.Run(c.name, func(t *testing.T) {
			fmt.Fprintf(&summary, "%-14s %s\n", c.name, bootLocalDisk(ctx, t, lab, srv, c))
		})
	}
	t.Logf("power-on to installed system (QEMU TCG, 1 vCPU):\n%s", summary.String())
}

// testContext is bounded by d and ends a minute before the test binary's
// -timeout, so that a slow run fails with its logs instead of a panic.
func testContext(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(d)
	if td, ok := t.Deadline(); ok && td.Add(-time.Minute).Before(deadline) {
		deadline = td.Add(-time.Minute)
	}
	return context.WithDeadline(context.Background(), deadline)
}

// bootLocalDisk boots one machine with an installed disk, waits for the
// disk's system and says how long it took.
func bootLocalDisk(ctx context.Context, t *testing.T, lab *vmtest.Lab, srv *vmtest.Proc, c localDiskCase) string {
	marker := "pxekit-localdisk-" + c.name + ": installed system up"
	disk := vmtest.InstalledDisk(t, vmtest.DiskConfig{Marker: marker})
	booted := vmtest.DiskBootedPattern(marker)
	vm := lab.Boot(t, vmtest.VMConfig{
		Name: c.name, Firmware: c.firmware, MAC: c.mac, Disk: disk, MemoryMB: 512,
		Milestones: map[string]*regexp.Regexp{
			"disk-grub":        regexp.MustCompile(`pxekit-disk: GRUB from the disk`),
			"installed-system": booted,
			"ovmf-front-page":  ovmfFrontPage,
		},
	})
	local := regexp.MustCompile(`stage=menu mac=` + c.mac + ` .*next=local`)
	vm.Watch("local-menu", srv.LogPath(), local)

	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := srv.WaitLog(sctx, local); err != nil {
		t.Fatalf("fleet never sent %s a local-boot menu: %v\n%s", c.mac, err, vm.TimelineString())
	}
	line, err := vm.WaitSerial(sctx, regexp.MustCompile(booted.String()+`|`+ovmfFrontPage.String()))
	// Taken now rather than read from the timeline, whose poller may not
	// have seen the line yet.
	up := vm.Elapsed()
	if err != nil {
		t.Fatalf("the disk's system did not come up after the local-boot menu: %v\n%s", err, vm.TimelineString())
	}
	if ovmfFrontPage.MatchString(line) {
		t.Fatalf("OVMF left the network boot option with success and stopped in its front page (UiApp) instead of "+
			"trying the disk: the local-boot menu must not end in GRUB's exit on UEFI\n%s", vm.TimelineString())
	}
	want := "bios"
	if c.firmware != vmtest.BIOS {
		want = "uefi"
	}
	require.Equal(t, want, booted.FindStringSubmatch(line)[1], "firmware the installed kernel saw")
	// The gate's answer was local all along: no installer kernel, no
	// answer file for this MAC.
	require.Zero(t, countLog(t, srv.LogPath(), `stage=(kernel|answer) mac=`+c.mac), "%s was sent the installer", c.mac)
	took := fmt.Sprintf("%.1f s (local-boot menu served at %.1f s, disk's GRUB at %.1f s)",
		up.Seconds(), at(vm, "local-menu"), at(vm, "disk-grub"))
	t.Logf("%s: installed system up %s", c.name, took)
	return took
}

// at is when a timeline entry happened, in seconds, or -1.
func at(vm *vmtest.VM, name string) float64 {
	for _, m := range vm.Timeline() {
		if m.Name == name {
			return m.At.Seconds()
		}
	}
	return -1
}

// localMenuVariant is one way of handing a machine back to its disk, for
// TestFirmwareLocalDiskMenus.
type localMenuVariant struct {
	name     string
	firmware vmtest.Firmware
	// grubCfg is served as grub/grub.cfg instead of fleet's menu; empty:
	// the machine is not in the inventory and fleet ignores it ("unknown:
	// ignore"), so its DHCP answer has an address but no boot file.
	grubCfg string
}

// The hand-written menus TestFirmwareLocalDiskMenus compares.
const (
	// GRUB 2.06 ignores exit's argument and returns EFI_SUCCESS.
	menuExit1 = "set timeout=0\nmenuentry 'exit 1' {\n\texit 1\n}\n"
	// GRUB 2.06 builds the chainloaded image's device path from $root's
	// device, not from the file's: on a network-booted GRUB $root is the
	// TFTP server, so the disk's shim gets the NIC as its device and
	// cannot open its own directory to load grubx64.efi.
	menuChainloadFileDevice = "set timeout=0\nmenuentry 'chainload, root left on the network' {\n" +
		"\tsearch --no-floppy --file --set=esp /EFI/BOOT/BOOTX64.EFI\n\tchainloader ($esp)/EFI/BOOT/BOOTX64.EFI\n\tboot\n}\n"
	menuChainloadRoot = "set timeout=0\nmenuentry 'chainload, root on the ESP' {\n" +
		"\tsearch --no-floppy --file --set=root /EFI/BOOT/BOOTX64.EFI\n\tchainloader /EFI/BOOT/BOOTX64.EFI\n\tboot\n}\n"
)

// TestFirmwareLocalDiskMenus measures which local-boot menu gets a
// network-booted machine to its disk, on OVMF (and BIOS for the silent
// variant): fleet answers DHCP, and a TFTP server of the test serves
// Debian's shim and GRUB with a hand-written grub.cfg. "local" is what
// bootmenu renders for LocalEntry, that is what fleet serves. It takes
// minutes per variant: run it with PXEKIT_VM_LOCALBOOT_MENUS=1, or a
// comma-separated list of variant names. It fails only when the harness
// does; it logs what each variant led to.
func TestFirmwareLocalDiskMenus(t *testing.T) {
	only := os.Getenv("PXEKIT_VM_LOCALBOOT_MENUS")
	if only == "" {
		t.Skip("measurement: set PXEKIT_VM_LOCALBOOT_MENUS=1 (boots one VM per variant, minutes each)")
	}
	vmtest.Require(t)
	needHostLoaders(t)
	needTool(t, "busybox")
	tftpd := needTool(t, "in.tftpd") // tftpd-hpa
	local, err := bootmenu.Render(&bootmenu.Menu{Title: "local", Default: "local", Entries: []bootmenu.Entry{bootmenu.LocalEntry()}},
		bootmenu.GRUB, bootmenu.Options{GRUBDialect: bootmenu.GRUBDebian})
	require.NoError(t, err)
	variants := []localMenuVariant{
		{name: "local", grubCfg: string(local)},
		{name: "exit-1", grubCfg: menuExit1},
		{name: "chainload-file-device", grubCfg: menuChainloadFileDevice},
		{name: "chainload-root", grubCfg: menuChainloadRoot},
		{name: "chainload-root-sb", firmware: vmtest.UEFISecureBoot, grubCfg: menuChainloadRoot},
		{name: "silent"},
		{name: "silent-bios", firmware: vmtest.BIOS},
	}
	if only != "1" {
		var keep []localMenuVariant
		for _, v := range variants {
			if strings.Contains(","+only+",", ","+v.name+",") {
				keep = append(keep, v)
			}
		}
		variants = keep
	}

	bin := filepath.Join(t.TempDir(), "fleet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	lab := vmtest.NewLab(t, vmtest.LabConfig{})
	server := lab.ServerIP().String()
	dir := t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	const listedMAC, silentMAC = "52:54:00:1d:01:01", "52:54:00:1d:01:99"
	inventory := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(inventory, []byte(fmt.Sprintf(`unknown: ignore
defaults:
  disk: {wipe: true}
  users: [{name: ops, sudo: true, password: {hash: %q}}]
profiles:
  debian12: {os: debian-12, netboot: nb, mirror: "http://%s:8080/mirror/debian"}
hosts:
  - {mac: %q, hostname: menus, profile: debian12}
`, testHash, server, listedMAC)), 0o644))
	// fleet's TFTP listens on loopback only; the lab's TFTP is the test's,
	// in a process of its own (an in-process server would open its
	// per-transfer sockets outside the lab's namespace).
	srv := lab.Start(t, "fleet", bin, "-inventory", inventory, "-iface", lab.Iface(), "-tftp-addr", "127.0.0.1:69",
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150", "-dns", server, "-progress", "log")
	ctx, cancel := testContext(t, time.Duration(len(variants))*20*time.Minute)
	defer cancel()
	_, err = srv.WaitLog(ctx, regexp.MustCompile(`pxekit fleet on`))
	require.NoError(t, err, "server did not start")
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"
	_, err = lab.Exec(ctx, "busybox", "wget", "-q", "-O", "/dev/null", "--header=Content-Type: application/json",
		"--post-data="+reportJSON("menus", "ok", nil),
		"http://"+server+":8080/api/report/"+dashedMAC(listedMAC)+"/"+tokenOf(t, state, listedMAC))
	require.NoError(t, err)
	requireState(ctx, t, lab, server, listedMAC, "installed")

	root := t.TempDir()
	for src, dst := range map[string]string{
		"/usr/lib/shim/shimx64.efi.signed":                      "shimx64.efi",
		"/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed": "grubx64.efi",
	} {
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, dst), data, 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "grub"), 0o755))
	lab.Start(t, "tftpd", tftpd, "--foreground", "--address", server+":69", "--secure", "--verbose", root)

	var summary strings.Builder
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			mac := listedMAC
			if v.grubCfg == "" {
				mac = silentMAC
			} else {
				require.NoError(t, os.WriteFile(filepath.Join(root, "grub", "grub.cfg"), []byte(v.grubCfg), 0o644))
			}
			marker := "pxekit-localboot-" + v.name + ": installed system up"
			booted := vmtest.DiskBootedPattern(marker)
			vm := lab.Boot(t, vmtest.VMConfig{
				Name: v.name, Firmware: v.firmware, MAC: mac, MemoryMB: 512,
				Disk: vmtest.InstalledDisk(t, vmtest.DiskConfig{Marker: marker}),
				Milestones: map[string]*regexp.Regexp{
					"ovmf-front-page":  ovmfFrontPage,
					"pxe-v4-failed":    regexp.MustCompile(`failed to load Boot\w+ "UEFI PXEv4`),
					"pxe-v6-failed":    regexp.MustCompile(`failed to load Boot\w+ "UEFI PXEv6`),
					"http-v4-failed":   regexp.MustCompile(`failed to load Boot\w+ "UEFI HTTPv4`),
					"http-v6-failed":   regexp.MustCompile(`failed to load Boot\w+ "UEFI HTTPv6`),
					"disk-option":      regexp.MustCompile(`starting Boot\w+ "UEFI Misc Device"|Booting from Hard Disk`),
					"disk-grub":        regexp.MustCompile(`pxekit-disk: GRUB from the disk`),
					"installed-system": booted,
				},
			})
			vctx, vcancel := context.WithTimeout(ctx, 15*time.Minute)
			defer vcancel()
			line, err := vm.WaitSerial(vctx, regexp.MustCompile(booted.String()+`|`+ovmfFrontPage.String()))
			result := "no outcome: " + fmt.Sprint(err)
			switch {
			case err == nil && booted.MatchString(line):
				result = fmt.Sprintf("installed system up after %.1f s", vm.Mark("installed system up").Seconds())
			case err == nil:
				front := vm.Elapsed()
				// The front page waits for a key; give it a minute to
				// show that it does not move on by itself.
				wctx, wcancel := context.WithTimeout(vctx, time.Minute)
				_, err := vm.WaitSerial(wctx, booted)
				wcancel()
				result = fmt.Sprintf("stopped in OVMF's front page (UiApp) at %.1f s", front.Seconds())
				if err == nil {
					result += ", then reached the disk"
				}
			}
			t.Logf("%s: %s\n%s", v.name, result, vm.TimelineString())
			fmt.Fprintf(&summary, "%-22s %s\n", v.name, result)
		})
	}
	t.Logf("local-boot menus:\n%s", summary.String())
}
