package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cpioEntry is one member of a newc archive, as the kernel reads it.
type cpioEntry struct {
	name       string
	mode       uint32
	rmaj, rmin uint32
	data       []byte
}

// readCPIO parses a newc archive up to its trailer, checking the 4-byte
// alignment of every header and every file's data.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		require.NoError(t, err)
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		require.Zero(t, off%4, "header at %d not aligned", off)
		require.GreaterOrEqual(t, len(b), off+110)
		require.Equal(t, "070701", string(b[off:off+6]))
		mode, size, rmaj, rmin, nameSize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+nameSize-1])
		require.Zero(t, b[off+110+nameSize-1], "name %q not NUL-terminated", name)
		data := align(off + 110 + nameSize)
		off = align(data + size)
		if name == "TRAILER!!!" {
			require.Equal(t, len(b), off, "bytes after the trailer")
			return out
		}
		out = append(out, cpioEntry{name: name, mode: mode, rmaj: rmaj, rmin: rmin, data: b[data : data+size]})
	}
}

func TestCPIOWriter(t *testing.T) {
	var w cpioWriter
	w.dir("dev")
	w.node("dev/console", 0o020600, 5, 1)
	w.file("lib/x86_64-linux-gnu/libc.so.6", 0o755, []byte("abcde"))
	w.file("init", 0o755, []byte("#!/bin/sh\n"))
	got := readCPIO(t, w.finish())
	var names []string
	for _, e := range got {
		names = append(names, e.name)
	}
	// Parents come before their children, once each.
	assert.Equal(t, []string{"dev", "dev/console", "lib", "lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu/libc.so.6", "init"}, names)
	assert.Equal(t, uint32(0o040755), got[0].mode)
	assert.Equal(t, cpioEntry{name: "dev/console", mode: 0o020600, rmaj: 5, rmin: 1, data: []byte{}}, got[1])
	assert.Equal(t, []byte("abcde"), got[4].data)
	assert.Equal(t, uint32(0o100755), got[5].mode)
}

func TestBusyboxInitramfs(t *testing.T) {
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("busybox not installed (Debian package busybox)")
	}
	gz, err := busyboxInitramfs("marker text")
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	files := map[string]cpioEntry{}
	for _, e := range readCPIO(t, raw) {
		files[e.name] = e
	}
	require.Contains(t, files, "bin/busybox")
	require.Contains(t, files, "dev/console")
	require.Contains(t, files, "init")
	assert.Contains(t, string(files["init"].data), `echo "marker text firmware=$fw" >/dev/console`)
	// Every library the dynamic busybox needs is inside, at its path.
	bb, _ := exec.LookPath("busybox")
	if out, err := exec.Command("ldd", bb).Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(l) {
				if strings.HasPrefix(f, "/") {
					assert.Contains(t, files, strings.TrimPrefix(filepath.Clean(f), "/"))
				}
			}
		}
	}
}

func TestDiskBootedPattern(t *testing.T) {
	re := DiskBootedPattern("")
	m := re.FindStringSubmatch("x " + DefaultDiskMarker + " firmware=uefi\r")
	require.NotNil(t, m)
	assert.Equal(t, "uefi", m[1])
	// The literal script text (echoed nowhere, but in the initramfs) and
	// the kernel command line never match.
	assert.False(t, re.MatchString(DefaultDiskMarker+" firmware=$fw"))
	assert.True(t, DiskBootedPattern("a.b (c)").MatchString("a.b (c) firmware=bios"))
	assert.False(t, DiskBootedPattern("a.b").MatchString("axb firmware=bios"))
}

// fakeGrubPC writes a disk image with a protective MBR partition table, a
// boot.img and a core.img of coreSectors sectors whose block list says
// blLen; it returns their paths.
func fakeGrubPC(t *testing.T, coreSectors, blLen int) (img, boot, core string) {
	t.Helper()
	dir := t.TempDir()
	disk := make([]byte, 4<<20)
	mbr := disk[:sectorSize]
	copy(mbr[bootBPBStart:], bytes.Repeat([]byte{0xbb}, bootBPBEnd-bootBPBStart))
	copy(mbr[bootNTMagic:], bytes.Repeat([]byte{0xee}, bootPartEnd-bootNTMagic))
	binary.LittleEndian.PutUint16(mbr[bootPartEnd:], 0xaa55)
	b := bytes.Repeat([]byte{0xc0}, sectorSize)
	binary.LittleEndian.PutUint16(b[bootPartEnd:], 0xaa55)
	c := bytes.Repeat([]byte{0x11}, coreSectors*sectorSize-100) // not a whole number of sectors
	bl := c[coreBlockList:]
	binary.LittleEndian.PutUint64(bl, 2) // grub-mkimage's default
	binary.LittleEndian.PutUint16(bl[8:], uint16(blLen))
	binary.LittleEndian.PutUint16(bl[10:], coreSegment)
	img, boot, core = filepath.Join(dir, "disk"), filepath.Join(dir, "boot.img"), filepath.Join(dir, "core.img")
	require.NoError(t, os.WriteFile(img, disk, 0o644))
	require.NoError(t, os.WriteFile(boot, b, 0o644))
	require.NoError(t, os.WriteFile(core, c, 0o644))
	return img, boot, core
}

func TestEmbedGrubPC(t *testing.T) {
	img, boot, core := fakeGrubPC(t, 3, 2)
	require.NoError(t, embedGrubPC(img, boot, core))
	disk, err := os.ReadFile(img)
	require.NoError(t, err)
	mbr := disk[:sectorSize]
	assert.Equal(t, bytes.Repeat([]byte{0xc0}, 3), mbr[:3], "boot.img's code")
	assert.Equal(t, bytes.Repeat([]byte{0xbb}, bootBPBEnd-bootBPBStart), mbr[bootBPBStart:bootBPBEnd], "BPB kept")
	assert.Equal(t, bytes.Repeat([]byte{0xee}, bootPartEnd-bootNTMagic), mbr[bootNTMagic:bootPartEnd], "partition table kept")
	assert.Equal(t, uint64(biosGrubStart), binary.LittleEndian.Uint64(mbr[bootKernelSector:]))
	assert.Equal(t, []byte{0xff, 0xc0, 0x90, 0x90}, mbr[bootDrive:bootDriveCheck+2])
	assert.Equal(t, uint16(0xaa55), binary.LittleEndian.Uint16(mbr[bootPartEnd:]))
	c := disk[biosGrubStart*sectorSize:]
	assert.Equal(t, uint64(biosGrubStart+1), binary.LittleEndian.Uint64(c[coreBlockList:]), "core.img's second sector")
	assert.Equal(t, byte(0x11), c[3*sectorSize-101])
	assert.Equal(t, byte(0), c[3*sectorSize-100])

	img, boot, core = fakeGrubPC(t, 3, 5)
	assert.ErrorContains(t, embedGrubPC(img, boot, core), "block list length 5, want 2")
	img, _, core = fakeGrubPC(t, 3, 2)
	assert.ErrorContains(t, embedGrubPC(img, core, core), "not GRUB's 512-byte boot.img")
	img, boot, core = fakeGrubPC(t, espStart-biosGrubStart+1, espStart-biosGrubStart)
	assert.ErrorContains(t, embedGrubPC(img, boot, core), "bios_grub partition holds 2048")
}

func TestFillVMConfigDisk(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "d.raw")
	require.NoError(t, os.WriteFile(disk, nil, 0o644))
	cfg := VMConfig{Disk: disk}
	require.NoError(t, fillVMConfig(&cfg))
	assert.True(t, filepath.IsAbs(cfg.Disk))
	assert.ErrorIs(t, fillVMConfig(&VMConfig{Disk: disk, DiskMB: 8}), errTwoDisks)
	assert.ErrorContains(t, fillVMConfig(&VMConfig{Disk: disk + ".missing"}), "no such file")
}

// TestInstalledDisk builds the disk image (no root, no VM) and reads it
// back with the file system tools.
func TestInstalledDisk(t *testing.T) {
	for _, bin := range []string{"debugfs", "mdir", "mtype", "e2fsck"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (Debian packages e2fsprogs, mtools)", bin)
		}
	}
	img := InstalledDisk(t, DiskConfig{Marker: "disk-test"})
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
		return string(out)
	}
	table := run("sgdisk", "--print", img)
	assert.Regexp(t, `(?m)^\s+1\s+2048\s+4095\s.*EF02\s+bios_grub$`, table)
	assert.Regexp(t, `(?m)^\s+2\s+4096\s+135167\s.*EF00\s+esp$`, table)
	assert.Regexp(t, `(?m)^\s+3\s+135168\s+\d+\s.*8300\s+root$`, table)
	run("sgdisk", "--verify", img)

	esp := fmt.Sprintf("%s@@%d", img, espStart*sectorSize)
	dir := run("mdir", "-b", "-i", esp, "::/EFI/BOOT")
	assert.Contains(t, strings.ToUpper(dir), "::/EFI/BOOT/BOOTX64.EFI")
	assert.Contains(t, strings.ToUpper(dir), "::/EFI/BOOT/GRUBX64.EFI")
	cfg := run("mtype", "-i", esp, "::/EFI/debian/grub.cfg")
	assert.Regexp(t, `^search.fs_uuid [0-9a-f-]{36} root hd0,gpt3\n`, cfg)

	root := fmt.Sprintf("%s?offset=%d", img, rootStart*sectorSize)
	run("e2fsck", "-f", "-n", root)
	ls := run("debugfs", "-R", "ls -p /boot", root)
	for _, f := range []string{"vmlinuz", "initrd.img", "grub"} {
		assert.Contains(t, ls, "/"+f+"/")
	}
	grubCfg := run("debugfs", "-R", "cat /boot/grub/grub.cfg", root)
	assert.Contains(t, grubCfg, "linux /boot/vmlinuz console=ttyS0,115200n8")
	uuid := strings.Fields(cfg)[1]
	assert.Contains(t, run("debugfs", "-R", "stats", root), uuid)
	assert.Contains(t, run("debugfs", "-R", "ls /boot/grub/i386-pc", root), "normal.mod")

	data, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, uint16(0xaa55), binary.LittleEndian.Uint16(data[bootPartEnd:]))
	assert.Equal(t, uint64(biosGrubStart), binary.LittleEndian.Uint64(data[bootKernelSector:]))
	assert.Equal(t, uint64(biosGrubStart+1), binary.LittleEndian.Uint64(data[biosGrubStart*sectorSize+coreBlockList:]))
}

func TestCheckMarker(t *testing.T) {
	assert.NoError(t, checkMarker(DefaultDiskMarker))
	for _, bad := range []string{`it's`, `a"b`, "a`b", "$fw", `a\b`, "100%", "a\nb"} {
		assert.ErrorContains(t, checkMarker(bad), "not allowed", bad)
	}
}
