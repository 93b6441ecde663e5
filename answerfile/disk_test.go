package answerfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDisk is one /sys/block entry of a fake tree.
type fakeDisk struct {
	name      string // kernel name; "!" as in cciss!c0d0
	mib       int
	removable bool
	ro        bool
	cd        bool   // SCSI type 5
	serial    string // device/serial
	udev      string // ID_SERIAL_SHORT in /run/udev/data
	majmin    string
}

func fakeSys(t *testing.T, disks []fakeDisk, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	write := func(p, v string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(v+"\n"), 0o644))
	}
	for _, d := range disks {
		dir := filepath.Join(root, "sys", "block", d.name)
		write(filepath.Join(dir, "size"), strconv.Itoa(d.mib*2048))
		write(filepath.Join(dir, "removable"), b01(d.removable))
		write(filepath.Join(dir, "ro"), b01(d.ro))
		if d.cd {
			write(filepath.Join(dir, "device", "type"), "5")
		} else {
			write(filepath.Join(dir, "device", "type"), "0")
		}
		if d.serial != "" {
			write(filepath.Join(dir, "device", "serial"), "  "+d.serial+"  ")
		}
		if d.majmin != "" {
			write(filepath.Join(dir, "dev"), d.majmin)
			if d.udev != "" {
				write(filepath.Join(root, "run", "udev", "data", "b"+d.majmin),
					"S:disk/by-id/x\nE:ID_SERIAL=Vendor_Model_"+d.udev+"\nE:ID_SERIAL_SHORT="+d.udev)
			}
		}
		dev := filepath.Join(root, "dev", strings.ReplaceAll(d.name, "!", "/"))
		require.NoError(t, os.MkdirAll(filepath.Dir(dev), 0o755))
		write(dev, "")
	}
	for from, to := range links {
		p := filepath.Join(root, "dev", from)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(to, p))
	}
	return root
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// shells returns the shells the installers run the script with that exist
// here: dash (subiquity), bash (anaconda), busybox ash (debian-installer).
func shells(t *testing.T) [][]string {
	var out [][]string
	for _, sh := range [][]string{{"dash"}, {"bash", "--posix"}, {"busybox", "ash"}} {
		if p, err := exec.LookPath(sh[0]); err == nil {
			out = append(out, append([]string{p}, sh[1:]...))
		}
	}
	if len(out) == 0 {
		t.Skip("no dash, bash or busybox to run the disk script with")
	}
	return out
}

func TestDiskPickScript(t *testing.T) {
	server := []fakeDisk{
		{name: "sda", mib: 3815447, serial: "DATA1", majmin: "8:0"},
		{name: "sdb", mib: 3815447, serial: "DATA2", majmin: "8:16"},
		{name: "nvme0n1", mib: 228936, serial: "S4EWNX0R123", majmin: "259:0", udev: "S4EWNX0R123"},
		{name: "sdc", mib: 7632, removable: true, majmin: "8:32", udev: "USBSTICK"},
		{name: "sr0", mib: 1024, cd: true},
		{name: "loop0", mib: 900},
		{name: "zram0", mib: 2048},
		{name: "ram0", mib: 64},
		{name: "dm-0", mib: 100},
	}
	links := map[string]string{
		"disk/by-id/nvme-Samsung_S4EWNX0R123":         "../../nvme0n1",
		"disk/by-path/pci-0000:00:1f.2-ata-2":         "../../sdb",
		"disk/by-id/nvme-Samsung_S4EWNX0R123-part1":   "../../nvme0n1p1",
		"disk/by-id/wwn-0x5000c500a1b2c3d4":           "../../sda",
		"disk/by-id/usb-Generic_Flash_USBSTICK-0:0":   "../../sdc",
		"disk/by-id/ata-Broken_Link_Target_Is_Absent": "../../sdz",
	}
	tests := []struct {
		name    string
		disks   []fakeDisk
		disk    Disk
		need    int
		want    string // chosen disk, or "" for a failure
		message string // part of stderr
	}{
		{"smallest fixed disk", server, Disk{}, 7683, "nvme0n1", "install disk nvme0n1 (228936 MiB)"},
		{"device name", server, Disk{Device: "sdb"}, 7683, "sdb", ""},
		{"device path", server, Disk{Device: "/dev/sda"}, 7683, "sda", ""},
		{"by-id", server, Disk{Device: "/dev/disk/by-id/nvme-Samsung_S4EWNX0R123"}, 7683, "nvme0n1", ""},
		{"by-path", server, Disk{Device: "/dev/disk/by-path/pci-0000:00:1f.2-ata-2"}, 7683, "sdb", ""},
		{"by-id of a partition", server, Disk{Device: "/dev/disk/by-id/nvme-Samsung_S4EWNX0R123-part1"}, 7683, "",
			"no disk matches disk.device=/dev/disk/by-id/nvme-Samsung_S4EWNX0R123-part1; disks seen:"},
		{"missing device", server, Disk{Device: "sdz"}, 7683, "", "no disk matches disk.device=sdz; disks seen: none"},
		{"explicit removable", server, Disk{Device: "/dev/disk/by-id/usb-Generic_Flash_USBSTICK-0:0"}, 7000, "sdc", ""},
		{"serial from sysfs", server, Disk{Serial: "DATA2"}, 7683, "sdb", ""},
		{"serial from udev", server, Disk{Serial: "USBSTICK"}, 7000, "sdc", ""},
		{"udev ID_SERIAL", server, Disk{Serial: "Vendor_Model_S4EWNX0R123"}, 7683, "nvme0n1", ""},
		{"unknown serial", server, Disk{Serial: "NOPE"}, 7683, "",
			"no disk matches disk.serial=NOPE; disks seen: nvme0n1 (228936 MiB, serial S4EWNX0R123) sda (3815447 MiB, serial DATA1)"},
		{"min size skips the boot disk", server, Disk{MinGiB: 1000}, 7683, "sda", ""},
		{"size range", server, Disk{MinGiB: 100, MaxGiB: 300}, 7683, "nvme0n1", ""},
		{"empty range", server, Disk{MinGiB: 300, MaxGiB: 1000}, 7683, "", "no disk matches disk.min_gib=300, disk.max_gib=1000"},
		{"too small", []fakeDisk{{name: "vda", mib: 9000}}, Disk{}, 9100, "",
			"disk vda is 9000 MiB, the layout needs at least 9100 MiB"},
		{"10 GB disk fits the default layout", []fakeDisk{{name: "vda", mib: 9536}}, Disk{}, DefaultLayout("").MinDiskMiB(), "vda", ""},
		{"read-only skipped", []fakeDisk{{name: "sda", mib: 10000, ro: true}, {name: "sdb", mib: 20000}}, Disk{}, 7683, "sdb", ""},
		{"read-only named", []fakeDisk{{name: "sda", mib: 10000, ro: true}}, Disk{Device: "sda"}, 7683, "",
			"disks seen: sda (10000 MiB, read-only)"},
		{"only removable", []fakeDisk{{name: "sda", mib: 10000, removable: true}, {name: "sr0", mib: 10000}}, Disk{}, 7683, "",
			"no disk matches the default rule"},
		{"zero-size card reader", []fakeDisk{{name: "sdb", mib: 0}, {name: "sda", mib: 10000}}, Disk{}, 7683, "sda", ""},
		{"cciss name", []fakeDisk{{name: "cciss!c0d0", mib: 10000}}, Disk{}, 7683, "cciss/c0d0", ""},
		{"cciss device", []fakeDisk{{name: "cciss!c0d0", mib: 10000}, {name: "sda", mib: 9000}}, Disk{Device: "/dev/cciss/c0d0"}, 7683, "cciss/c0d0", ""},
		{"no disks", nil, Disk{}, 7683, "", "disks seen: none"},
		{"tie takes the first", []fakeDisk{{name: "sdb", mib: 10000}, {name: "sda", mib: 10000}}, Disk{}, 7683, "sda", ""},
		{"quotes in serial are data", server, Disk{Serial: `a'b"c$(x)`}, 7683, "", `disk.serial=a'b"c$(x)`},
	}
	for _, sh := range shells(t) {
		for _, tt := range tests {
			t.Run(filepath.Base(sh[0])+"/"+tt.name, func(t *testing.T) {
				root := fakeSys(t, tt.disks, links)
				script := filepath.Join(t.TempDir(), "pick.sh")
				require.NoError(t, os.WriteFile(script, []byte(diskPickScript(tt.disk, tt.need)), 0o644))
				cmd := exec.Command(sh[0], append(sh[1:], script)...)
				cmd.Env = []string{"PXEKIT_ROOT=" + root, "PATH=" + os.Getenv("PATH")}
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if tt.want == "" {
					assert.Error(t, err, stdout.String())
					assert.Empty(t, stdout.String())
				} else {
					require.NoError(t, err, stderr.String())
					assert.Equal(t, tt.want+"\n", stdout.String())
				}
				assert.Contains(t, stderr.String(), tt.message)
			})
		}
	}
}
