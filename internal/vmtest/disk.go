package vmtest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// DiskConfig describes the disk of an installed system, built by
// [InstalledDisk]. The zero value is usable.
type DiskConfig struct {
	// Marker is what the installed system prints on the serial console
	// when it has booted, followed by " firmware=uefi" or " firmware=bios"
	// (what the running kernel saw; see [DiskBootedPattern]). Default
	// [DefaultDiskMarker].
	Marker string
	// Kernel is the Linux kernel (bzImage) installed on the disk. Default:
	// the Debian 12 netboot installer's kernel (package
	// debian-installer-12-netboot-amd64), else the newest
	// /boot/vmlinuz-*.
	Kernel string
}

// DefaultDiskMarker is the default [DiskConfig.Marker].
const DefaultDiskMarker = "pxekit-installed-system: booted from disk"

// DebianInstallerKernel is the kernel of Debian 12's netboot installer,
// the default kernel of [InstalledDisk].
const DebianInstallerKernel = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux"

// DiskBootedPattern matches the line the installed system of an
// [InstalledDisk] built with marker prints; submatch 1 is the firmware the
// kernel was started by ("uefi" or "bios").
func DiskBootedPattern(marker string) *regexp.Regexp {
	if marker == "" {
		marker = DefaultDiskMarker
	}
	return regexp.MustCompile(regexp.QuoteMeta(marker) + ` firmware=(uefi|bios)`)
}

// The installed disk's layout, in 512-byte sectors: what Debian's cloud
// images and a Debian install on a GPT disk have, with both boot paths. The
// ESP is large enough for FAT32 with 512-byte clusters (at least 65525).
const (
	diskSizeMB     = 160
	biosGrubStart  = 2048   // bios_grub: 1 MiB for GRUB's core.img
	espStart       = 4096   // EFI system partition, 64 MiB
	espSectors     = 131072 //
	rootStart      = espStart + espSectors
	rootFSMB       = 64 // ext4 with /boot; the partition runs to the disk's end
	sectorSize     = 512
	grubPCDir      = "/usr/lib/grub/i386-pc"
	shimSigned     = "/usr/lib/shim/shimx64.efi.signed"
	grubEFISigned  = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
	installedTitle = "pxekit test system (installed on this disk)"
)

// InstalledDisk builds, without root, a raw disk image holding a tiny
// installed Linux system the way an installer leaves a GPT disk, and returns
// its path (in a test temporary directory; attach it with
// [VMConfig.Disk]):
//
//   - partition 1, bios_grub: GRUB's i386-pc core.img, with GRUB's boot.img
//     in the protective MBR (what "grub-install --target=i386-pc" does);
//   - partition 2, the EFI system partition (FAT32): Debian's signed shim at
//     the removable-media path EFI/BOOT/BOOTX64.EFI with Debian's signed
//     GRUB beside it (EFI/BOOT/grubx64.efi, as grub-install
//     --force-extra-removable leaves them), and EFI/debian/grub.cfg, which
//     finds the root file system by UUID, as Debian's installer writes it;
//   - partition 3, the root file system (ext4): /boot/vmlinuz,
//     /boot/initrd.img, /boot/grub/grub.cfg and GRUB's i386-pc modules.
//
// The initramfs runs BusyBox (the host's /bin/busybox and the libraries ldd
// names, Debian package busybox): it prints the marker line (see
// [DiskBootedPattern]) on the console and powers the machine off, so QEMU
// exits. The kernel command line sends the console to ttyS0.
//
// The test is skipped when a tool or file is missing; the Debian packages
// are gdisk, dosfstools, mtools, e2fsprogs, grub-common, grub-pc-bin,
// grub-efi-amd64-signed, shim-signed and busybox.
func InstalledDisk(t testing.TB, cfg DiskConfig) string {
	t.Helper()
	if cfg.Marker == "" {
		cfg.Marker = DefaultDiskMarker
	}
	if err := checkMarker(cfg.Marker); err != nil {
		t.Fatal(err)
	}
	if cfg.Kernel == "" {
		cfg.Kernel = defaultKernel()
	}
	if msg := missingDiskTools(cfg.Kernel); msg != "" {
		t.Skip("vmtest: skipped: " + msg)
	}
	dir := t.TempDir()
	img, err := buildInstalledDisk(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkMarker refuses what the init script's double-quoted echo would not
// print as given.
func checkMarker(m string) error {
	if strings.ContainsAny(m, "\"'`$\\%\n\r") {
		return fmt.Errorf("vmtest: disk marker %q: quotes, $, backslashes, %% and line breaks are not allowed", m)
	}
	return nil
}

// defaultKernel is the installer's kernel, else the newest installed one.
func defaultKernel() string {
	if exists(DebianInstallerKernel) {
		return DebianInstallerKernel
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(ks)
	if len(ks) > 0 {
		return ks[len(ks)-1]
	}
	return DebianInstallerKernel
}

// missingDiskTools names what InstalledDisk needs and the host lacks.
func missingDiskTools(kernel string) string {
	var miss []string
	for _, bin := range []string{"sgdisk", "mkfs.fat", "mmd", "mcopy", "mkfs.ext4", "grub-mkimage", "busybox", "ldd"} {
		if _, err := exec.LookPath(bin); err != nil {
			miss = append(miss, bin)
		}
	}
	for _, f := range []string{kernel, shimSigned, grubEFISigned, grubPCDir + "/boot.img", grubPCDir + "/normal.mod"} {
		if !exists(f) {
			miss = append(miss, f)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return "building an installed disk needs " + strings.Join(miss, ", ") +
		" (Debian packages: gdisk dosfstools mtools e2fsprogs grub-common grub-pc-bin grub-efi-amd64-signed shim-signed busybox," +
		" and debian-installer-12-netboot-amd64 or a kernel in /boot)"
}

func buildInstalledDisk(dir string, cfg DiskConfig) (string, error) {
	img := filepath.Join(dir, "installed.raw")
	f, err := os.Create(img)
	if err != nil {
		return "", fmt.Errorf("vmtest: disk image: %w", err)
	}
	err = f.Truncate(diskSizeMB << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("vmtest: disk image: %w", err)
	}
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("vmtest: building the disk: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	// GPT: bios_grub, ESP, Linux root.
	if err := run("sgdisk", "--clear",
		fmt.Sprintf("--new=1:%d:%d", biosGrubStart, espStart-1), "--typecode=1:ef02", "--change-name=1:bios_grub",
		fmt.Sprintf("--new=2:%d:%d", espStart, rootStart-1), "--typecode=2:ef00", "--change-name=2:esp",
		fmt.Sprintf("--new=3:%d:0", rootStart), "--typecode=3:8300", "--change-name=3:root",
		img); err != nil {
		return "", err
	}

	uuid, err := randomUUID()
	if err != nil {
		return "", err
	}
	// The root file system, populated from a directory (mke2fs -d).
	root := filepath.Join(dir, "root")
	initrd, err := busyboxInitramfs(cfg.Marker)
	if err != nil {
		return "", err
	}
	kernel, err := os.ReadFile(cfg.Kernel)
	if err != nil {
		return "", fmt.Errorf("vmtest: kernel: %w", err)
	}
	files := map[string][]byte{
		"boot/vmlinuz":       kernel,
		"boot/initrd.img":    initrd,
		"boot/grub/grub.cfg": []byte(installedGrubCfg()),
	}
	mods, err := filepath.Glob(grubPCDir + "/*.mod")
	if err != nil {
		return "", err
	}
	lsts, _ := filepath.Glob(grubPCDir + "/*.lst")
	for _, m := range append(mods, lsts...) {
		data, err := os.ReadFile(m)
		if err != nil {
			return "", fmt.Errorf("vmtest: GRUB module: %w", err)
		}
		files["boot/grub/i386-pc/"+filepath.Base(m)] = data
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("vmtest: %w", err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", fmt.Errorf("vmtest: %w", err)
		}
	}
	// Written straight into the partition (-E offset): no loop device.
	if err := run("mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid, "-d", root,
		"-E", fmt.Sprintf("offset=%d", rootStart*sectorSize), img, fmt.Sprintf("%dM", rootFSMB)); err != nil {
		return "", err
	}

	// The ESP: FAT32 with 512-byte sectors and clusters, written in place.
	if err := run("mkfs.fat", "-F", "32", "-S", "512", "-s", "1", "-n", "ESP",
		fmt.Sprintf("--offset=%d", espStart), img, fmt.Sprint(espSectors/2)); err != nil {
		return "", err
	}
	esp := fmt.Sprintf("%s@@%d", img, espStart*sectorSize)
	if err := run("mmd", "-i", esp, "::/EFI", "::/EFI/BOOT", "::/EFI/debian"); err != nil {
		return "", err
	}
	espCfg := filepath.Join(dir, "esp-grub.cfg")
	if err := os.WriteFile(espCfg, []byte(espGrubCfg(uuid)), 0o644); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	for src, dst := range map[string]string{
		shimSigned:    "::/EFI/BOOT/BOOTX64.EFI",
		grubEFISigned: "::/EFI/BOOT/grubx64.efi",
		espCfg:        "::/EFI/debian/grub.cfg",
	} {
		if err := run("mcopy", "-i", esp, src, dst); err != nil {
			return "", err
		}
	}

	// BIOS: core.img into bios_grub, boot.img into the MBR.
	load := filepath.Join(dir, "load.cfg")
	if err := os.WriteFile(load, []byte(fmt.Sprintf("search.fs_uuid %s root hd0,gpt3\nset prefix=($root)'/boot/grub'\n", uuid)), 0o644); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	core := filepath.Join(dir, "core.img")
	if err := run("grub-mkimage", "-O", "i386-pc", "-d", grubPCDir, "-o", core, "-c", load, "-p", "/boot/grub",
		"biosdisk", "part_gpt", "ext2", "search_fs_uuid"); err != nil {
		return "", err
	}
	if err := embedGrubPC(img, grubPCDir+"/boot.img", core); err != nil {
		return "", err
	}
	if err := os.RemoveAll(root); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	return img, nil
}

// installedGrubCfg is the installed system's /boot/grub/grub.cfg, the same
// for both firmwares. The echo shows on the serial console (OVMF's console
// and SeaBIOS's sercon both reach it), so a log tells the disk's GRUB from a
// network-loaded one.
func installedGrubCfg() string {
	return `set timeout=0
set default=0
menuentry '` + installedTitle + `' {
	echo 'pxekit-disk: GRUB from the disk is loading the installed kernel'
	linux /boot/vmlinuz console=ttyS0,115200n8 rdinit=/init panic=0
	initrd /boot/initrd.img
}
`
}

// espGrubCfg is what Debian's installer writes to EFI/debian/grub.cfg: it
// hands over to the root file system's GRUB configuration.
func espGrubCfg(uuid string) string {
	return fmt.Sprintf("search.fs_uuid %s root hd0,gpt3\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n", uuid)
}

// Offsets in GRUB's i386-pc boot.img (grub/i386/pc/boot.h) and in the first
// sector of core.img (diskboot.img's first block list entry at its end).
const (
	bootBPBStart     = 0x03  // BIOS parameter block: kept from the disk
	bootBPBEnd       = 0x5a  //
	bootKernelSector = 0x5c  // LBA of core.img's first sector (8 bytes)
	bootDrive        = 0x64  // 0xff: use the drive the BIOS booted from
	bootDriveCheck   = 0x66  // 2-byte jump, NOPed out for hard disks
	bootNTMagic      = 0x1b8 // disk signature and partition table: kept
	bootPartEnd      = 0x1fe //
	coreBlockList    = sectorSize - 12
	coreSegment      = 0x0820 // GRUB_BOOT_I386_PC_KERNEL_SEG + 512/16
)

// embedGrubPC does what grub-bios-setup does for a GPT disk with a
// bios_grub partition, on an image file: core.img goes to the partition's
// sectors, its first block list points at its second sector, and boot.img
// replaces the MBR's code, keeping the protective partition table.
// grub-bios-setup itself refuses to run when it cannot find the block
// device of its own directory (as in containers), hence this.
func embedGrubPC(img, bootImg, coreImg string) error {
	boot, err := os.ReadFile(bootImg)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	core, err := os.ReadFile(coreImg)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	if len(boot) != sectorSize || binary.LittleEndian.Uint16(boot[bootPartEnd:]) != 0xaa55 {
		return fmt.Errorf("vmtest: %s is not GRUB's 512-byte boot.img", bootImg)
	}
	nsec := (len(core) + sectorSize - 1) / sectorSize
	if nsec < 2 || nsec > espStart-biosGrubStart {
		return fmt.Errorf("vmtest: core.img has %d sectors; the bios_grub partition holds %d", nsec, espStart-biosGrubStart)
	}
	bl := core[coreBlockList:sectorSize]
	if got := binary.LittleEndian.Uint16(bl[8:]); int(got) != nsec-1 {
		return fmt.Errorf("vmtest: core.img block list length %d, want %d (not an i386-pc core.img?)", got, nsec-1)
	}
	if got := binary.LittleEndian.Uint16(bl[10:]); got != coreSegment {
		return fmt.Errorf("vmtest: core.img block list segment %#x, want %#x", got, coreSegment)
	}
	binary.LittleEndian.PutUint64(bl[0:], biosGrubStart+1)

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	defer f.Close()
	mbr := make([]byte, sectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("vmtest: reading the MBR: %w", err)
	}
	copy(boot[bootBPBStart:bootBPBEnd], mbr[bootBPBStart:bootBPBEnd])
	copy(boot[bootNTMagic:bootPartEnd], mbr[bootNTMagic:bootPartEnd])
	binary.LittleEndian.PutUint64(boot[bootKernelSector:], biosGrubStart)
	boot[bootDrive] = 0xff
	boot[bootDriveCheck], boot[bootDriveCheck+1] = 0x90, 0x90
	if _, err := f.WriteAt(core, biosGrubStart*sectorSize); err != nil {
		return fmt.Errorf("vmtest: writing core.img: %w", err)
	}
	if _, err := f.WriteAt(boot, 0); err != nil {
		return fmt.Errorf("vmtest: writing the MBR: %w", err)
	}
	return f.Close()
}

func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// initScript is the installed system's /init. The firmware is what the
// kernel saw: /sys/firmware/efi exists only when UEFI started it.
const initScript = `#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
fw=bios
[ -d /sys/firmware/efi ] && fw=uefi
echo "%s firmware=$fw" >/dev/console
$bb sleep 1
$bb poweroff -f
`

// busyboxInitramfs is a gzip'ed newc cpio archive: /init, /bin/busybox with
// the shared libraries ldd lists, and /dev/console (the kernel opens it
// for init's output before anything could create it).
func busyboxInitramfs(marker string) ([]byte, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	files := map[string]string{"bin/busybox": bb}
	out, err := exec.Command("ldd", bb).CombinedOutput()
	// ldd fails for a static binary ("not a dynamic executable"), which
	// needs no libraries.
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			var lib string
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				lib = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				lib = f[0] // the dynamic loader, at its own path
			}
			if lib != "" {
				files[strings.TrimPrefix(path.Clean(lib), "/")] = lib
			}
		}
	} else if !bytes.Contains(out, []byte("not a dynamic executable")) {
		return nil, fmt.Errorf("vmtest: ldd %s: %w: %s", bb, err, bytes.TrimSpace(out))
	}
	var w cpioWriter
	w.dir("dev")
	w.node("dev/console", 0o020600, 5, 1)
	w.dir("proc")
	w.dir("sys")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(files[n]) // follows symbolic links
		if err != nil {
			return nil, fmt.Errorf("vmtest: initramfs: %w", err)
		}
		w.file(n, 0o755, data)
	}
	w.file("init", 0o755, []byte(fmt.Sprintf(initScript, marker)))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(w.finish()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// cpioWriter writes the "newc" cpio format the kernel unpacks as its
// initramfs. Parent directories are added before their first entry.
type cpioWriter struct {
	buf  bytes.Buffer
	ino  int
	dirs map[string]bool
}

func (w *cpioWriter) header(name string, mode uint32, size int, rmaj, rmin uint32) {
	w.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) parents(name string) {
	if w.dirs == nil {
		w.dirs = map[string]bool{}
	}
	if d := path.Dir(name); d != "." && !w.dirs[d] {
		w.dir(d)
	}
}

func (w *cpioWriter) dir(name string) {
	w.parents(name)
	if w.dirs[name] {
		return
	}
	w.dirs[name] = true
	w.header(name, 0o040755, 0, 0, 0)
}

func (w *cpioWriter) node(name string, mode, major, minor uint32) {
	w.parents(name)
	w.header(name, mode, 0, major, minor)
}

func (w *cpioWriter) file(name string, perm fs.FileMode, data []byte) {
	w.parents(name)
	w.header(name, 0o100000|uint32(perm), len(data), 0, 0)
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) finish() []byte {
	w.header("TRAILER!!!", 0, 0, 0, 0)
	return w.buf.Bytes()
}

// errTwoDisks is fillVMConfig's answer when both disk options are set.
var errTwoDisks = errors.New("vmtest: VMConfig.DiskMB and VMConfig.Disk are exclusive")
