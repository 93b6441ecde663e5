// Package vmtest boots real network-boot firmware in QEMU against servers
// running in a private network namespace, so that end-to-end tests prove the
// whole chain (firmware → DHCP → TFTP/HTTP → boot loader → kernel → installer)
// on the same UEFI and BIOS code that runs on bare metal.
//
// A [Lab] is one network namespace holding a single tap device; the VM's only
// NIC is the other end of that tap, and the namespace has no route anywhere
// else, so nothing a test does can reach another network. Servers run inside
// the namespace as child processes ([Lab.Start]) or in-process through sockets
// opened inside it ([Lab.ListenPacket], [Lab.Listen]). [Lab.Boot] starts QEMU
// with OVMF (UEFI, optionally Secure Boot with Microsoft keys enrolled, PXE or
// UEFI HTTP boot) or SeaBIOS with QEMU's iPXE option ROM (legacy BIOS).
//
// Typical use from a test:
//
//	lab := vmtest.NewLab(t, vmtest.LabConfig{})
//	srv := lab.Start(t, "server", bin, "-iface", lab.Iface())
//	vm := lab.Boot(t, vmtest.VMConfig{Firmware: vmtest.UEFI})
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
//	defer cancel()
//	if _, err := srv.WaitLog(ctx, regexp.MustCompile(`stage=answer`)); err != nil {
//		t.Fatal(err)
//	}
//	t.Logf("answer file after %s", vm.Mark("answer"))
//
// Everything needs root (namespaces, tap devices); [Require] skips the test
// with a clear message otherwise, or when QEMU or the firmware images are not
// installed (Debian: qemu-system-x86, ovmf, ipxe-qemu, iproute2).
//
// Several labs may run in parallel (each has its own namespace with a unique
// name), but QEMU without KVM emulates every instruction: on a two-core host
// run one VM at a time, i.e. do not mark VM tests with t.Parallel. KVM is used
// only when PXEKIT_VM_ACCEL=kvm is set (or [VMConfig.Accel] says so), because
// many CI and nested hosts expose /dev/kvm but cannot run firmware under it.
//
// Environment: PXEKIT_VM_OUT=DIR keeps every lab's logs, serial console,
// timeline and screenshots in DIR/<test name> (for CI artifacts; otherwise
// they go to a temporary directory and their tails are logged when a test
// fails); PXEKIT_VM_ACCEL=kvm opts in to KVM; PXEKIT_VM_BASELINE=1 enables
// this package's measurement of a dnsmasq + TFTP-only setup.
package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Firmware selects what the VM boots with.
type Firmware string

const (
	// UEFI is OVMF without Secure Boot; the virtio NIC uses OVMF's own
	// driver and PXE/HTTP stack.
	UEFI Firmware = "uefi"
	// UEFISecureBoot is OVMF with Secure Boot enforced and Microsoft's
	// keys enrolled, so only a Microsoft-signed shim (and what it trusts)
	// can run.
	UEFISecureBoot Firmware = "uefi-secureboot"
	// BIOS is SeaBIOS with QEMU's default iPXE option ROM for the NIC.
	BIOS Firmware = "bios"
)

// firmwareFiles names the OVMF images of one firmware variant (Debian 12
// paths, package ovmf). The variables file is copied per VM, because OVMF
// writes boot entries into it.
type firmwareFiles struct {
	code, vars string
	secure     bool
}

// firmwareFor returns the OVMF images for fw, or an error naming the missing
// file and the Debian package that ships it.
func firmwareFor(fw Firmware) (firmwareFiles, error) {
	var cands []firmwareFiles
	switch fw {
	case UEFI:
		cands = []firmwareFiles{
			{code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd"},
			{code: "/usr/share/OVMF/OVMF_CODE.fd", vars: "/usr/share/OVMF/OVMF_VARS.fd"},
		}
	case UEFISecureBoot:
		cands = []firmwareFiles{
			{code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", secure: true},
			{code: "/usr/share/OVMF/OVMF_CODE.secboot.fd", vars: "/usr/share/OVMF/OVMF_VARS.ms.fd", secure: true},
		}
	case BIOS:
		return firmwareFiles{}, nil
	default:
		return firmwareFiles{}, fmt.Errorf("vmtest: unknown firmware %q (want %q, %q or %q)", fw, UEFI, UEFISecureBoot, BIOS)
	}
	for _, c := range cands {
		if exists(c.code) && exists(c.vars) {
			return c, nil
		}
	}
	return firmwareFiles{}, fmt.Errorf("vmtest: no OVMF images for %s (looked for %s and %s; install Debian package ovmf)",
		fw, cands[0].code, cands[0].vars)
}

// ipxeROMDir is where Debian's ipxe-qemu puts the NIC option ROMs that QEMU
// loads by default.
const ipxeROMDir = "/usr/lib/ipxe/qemu"

// Require skips t unless the host can run VM tests: root (network namespaces
// and tap devices need it), iproute2, /dev/net/tun, qemu-system-x86_64, OVMF
// and the iPXE option ROMs. [NewLab] calls it, so most tests need not.
func Require(t testing.TB) {
	t.Helper()
	if msg := missing(); msg != "" {
		t.Skip("vmtest: skipped: " + msg)
	}
}

// missing describes the first unmet requirement, or returns "".
func missing() string {
	if os.Geteuid() != 0 {
		return "needs root for network namespaces and tap devices (run the tests as root, e.g. sudo go test)"
	}
	var miss []string
	for _, bin := range []string{"ip", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(bin); err != nil {
			miss = append(miss, bin)
		}
	}
	for _, f := range []string{"/dev/net/tun", ipxeROMDir + "/efi-virtio.rom"} {
		if !exists(f) {
			miss = append(miss, f)
		}
	}
	if _, err := firmwareFor(UEFI); err != nil {
		miss = append(miss, "OVMF firmware")
	}
	if len(miss) > 0 {
		return "missing " + strings.Join(miss, ", ") +
			" (Debian packages: qemu-system-x86 ovmf ipxe-qemu iproute2)"
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
