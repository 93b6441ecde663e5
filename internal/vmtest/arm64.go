package vmtest

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ARM64 clients: qemu-system-aarch64's "virt" machine with AAVMF, the
// AArch64 build of the same EDK II firmware as OVMF (Debian package
// qemu-efi-aarch64). Its PXE client sends DHCP option 93 = 11 (ARM64
// UEFI), so a boot server must answer with AArch64 loaders. QEMU emulates
// every instruction of another architecture (TCG), so expect an installer
// boot to take several times as long as an x86 one on the same host.

// qemuARM64 is the QEMU binary for AArch64 guests (Debian package
// qemu-system-arm).
const qemuARM64 = "qemu-system-aarch64"

// aavmfFor returns the AAVMF images for fw (Debian 12 paths). UEFI is
// AAVMF without Secure Boot; UEFISecureBoot uses the variables with
// Microsoft's keys enrolled and Secure Boot enabled (AAVMF_VARS.ms.fd), so
// only a Microsoft-signed shim can start. The AArch64 firmware keeps its
// variables in plain flash: no SMM, no secure pflash.
func aavmfFor(fw Firmware) (firmwareFiles, error) {
	var c firmwareFiles
	switch fw {
	case UEFI, "":
		c = firmwareFiles{code: "/usr/share/AAVMF/AAVMF_CODE.fd", vars: "/usr/share/AAVMF/AAVMF_VARS.fd"}
	case UEFISecureBoot:
		c = firmwareFiles{code: "/usr/share/AAVMF/AAVMF_CODE.ms.fd", vars: "/usr/share/AAVMF/AAVMF_VARS.ms.fd", secure: true}
	default:
		return firmwareFiles{}, fmt.Errorf("vmtest: ARM64 VMs boot %q or %q firmware, not %q", UEFI, UEFISecureBoot, fw)
	}
	if !exists(c.code) || !exists(c.vars) {
		return firmwareFiles{}, fmt.Errorf("vmtest: no AAVMF images for %s (looked for %s and %s; install Debian package qemu-efi-aarch64)", fw, c.code, c.vars)
	}
	return c, nil
}

// RequireARM64 skips t unless the host can run ARM64 VM tests: everything
// [Require] asks for (labs need it), plus qemu-system-aarch64 and AAVMF.
func RequireARM64(t testing.TB) {
	t.Helper()
	Require(t)
	if msg := missingARM64(); msg != "" {
		t.Skip("vmtest: skipped: " + msg)
	}
}

func missingARM64() string {
	var miss []string
	if _, err := exec.LookPath(qemuARM64); err != nil {
		miss = append(miss, qemuARM64)
	}
	if _, err := aavmfFor(UEFI); err != nil {
		miss = append(miss, "AAVMF firmware")
	}
	if len(miss) > 0 {
		return "missing " + strings.Join(miss, ", ") + " (Debian packages: qemu-system-arm qemu-efi-aarch64)"
	}
	return ""
}

// BootARM64 is [Lab.Boot] for an AArch64 client: qemu-system-aarch64 -M virt
// with AAVMF, network-booting from a virtio NIC (AAVMF's own driver and PXE
// stack; option 93 = 11). cfg.Firmware is UEFI (default) or UEFISecureBoot;
// HTTPBoot, BIOS and NIC models other than virtio are refused. The serial
// console is the virt machine's PL011 UART (ttyAMA0 for Linux). The VM has
// no display, so [VM.Screenshot] fails. Missing QEMU or firmware skips the
// test.
func (l *Lab) BootARM64(t testing.TB, cfg VMConfig) *VM {
	t.Helper()
	if msg := missingARM64(); msg != "" {
		t.Skip("vmtest: skipped: " + msg)
	}
	if _, err := aavmfFor(cfg.Firmware); err != nil {
		t.Skip(err)
	}
	vm, err := l.bootARM64(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.track(t, vm, false, "arm64 "+vm.describe())
	return vm
}

// errARM64Config reports a VMConfig an ARM64 VM cannot honour.
var errARM64Config = errors.New("vmtest: ARM64 VMs")

func (l *Lab) bootARM64(cfg VMConfig) (*VM, error) {
	if cfg.Firmware == "" {
		cfg.Firmware = UEFI
	}
	if err := fillVMConfig(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.HTTPBoot:
		return nil, fmt.Errorf("%w boot over PXE only (HTTPBoot is not supported)", errARM64Config)
	case cfg.NIC != "virtio":
		return nil, fmt.Errorf("%w have a virtio NIC only, not %q", errARM64Config, cfg.NIC)
	case cfg.Accel == "kvm":
		return nil, fmt.Errorf("%w run under TCG only (KVM cannot run another architecture)", errARM64Config)
	}
	fw, err := aavmfFor(cfg.Firmware)
	if err != nil {
		return nil, err
	}
	return l.startVM(cfg, qemuARM64, func(vm *VM) ([]string, error) { return vm.qemuArgsARM64(fw) })
}

// qemuArgsARM64 is the command line of an AArch64 client. cortex-a57
// rather than "max": TCG emulates "max"'s pointer authentication in
// software, which makes every function call of the guest kernel slow.
func (vm *VM) qemuArgsARM64(fw firmwareFiles) ([]string, error) {
	cfg := vm.cfg
	vars := filepath.Join(vm.run, "AAVMF_VARS.fd")
	if err := copyFile(fw.vars, vars); err != nil {
		return nil, fmt.Errorf("vmtest: writable copy of %s: %w", fw.vars, err)
	}
	args := []string{
		"-name", "pxekit-" + cfg.Name,
		"-machine", "virt",
		"-cpu", "cortex-a57",
		"-accel", "tcg",
		"-m", fmt.Sprint(cfg.MemoryMB),
		"-smp", fmt.Sprint(cfg.CPUs),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-uuid", cfg.UUID,
		"-netdev", "tap,id=net0,ifname=" + vm.lab.iface + ",script=no,downscript=no",
		// No option ROM: AAVMF's own virtio driver and PXE stack.
		"-device", fmt.Sprintf("virtio-net-pci,netdev=net0,mac=%s,bootindex=1,romfile=", cfg.MAC),
		"-chardev", "file,id=ser0,path=" + vm.serial,
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + vm.qmpPath() + ",server=on,wait=off",
		"-monitor", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + fw.code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
	}
	switch {
	case cfg.DiskMB > 0:
		return nil, fmt.Errorf("%w: DiskMB is not supported", errARM64Config)
	case cfg.Disk != "":
		return nil, fmt.Errorf("%w: Disk is not supported", errARM64Config)
	}
	return append(args, cfg.ExtraArgs...), nil
}

// ARM64Milestones are serial-console patterns of an ARM64 network boot
// that the defaults do not cover, for [VMConfig.Milestones]: shim's and
// GRUB's own lines differ little from x86, but the kernel's first line and
// the EFI stub are worth a mark when the boot is slow under TCG.
func ARM64Milestones() map[string]*regexp.Regexp {
	return map[string]*regexp.Regexp{
		"efi-stub": regexp.MustCompile(`EFI stub: Booting Linux Kernel`),
	}
}
