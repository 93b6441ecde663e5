package answerfile

import "slices"

// Default layout sizes in MiB, the same for every installer (see the table
// in the package documentation). They fit a 10 GB disk (10e9 bytes, 9536
// MiB) with room to spare, and / grows to fill a larger one.
const (
	// biosBootMiB is the GPT BIOS boot partition every layout starts with,
	// whatever the spec says: GRUB for BIOS embeds its core image there, so
	// the same disk boots on BIOS and on UEFI machines. It is not a Volume
	// of the spec; renderers add it first on the disk.
	biosBootMiB    = 1
	defaultESPMiB  = 512
	defaultBootMiB = 1024
	defaultSwapMiB = 1024
	defaultRootMiB = 5120 // minimum; / grows

	// Smallest sizes a spec may give, below which an install fails or
	// leaves an unusable system: firmware and mkfs.vfat need room for a
	// FAT32 ESP, /boot holds two or three kernels with their initramfs, /
	// the smallest package set of any target.
	minESPMiB  = 100
	minBootMiB = 256
	minRootMiB = 2048

	// maxVolumeMiB bounds one volume (1 EiB) so that sums cannot overflow.
	maxVolumeMiB = 1 << 40
	// maxVolumes bounds partitions and logical volumes each (GPT has 128
	// entries, the BIOS boot partition and the LVM physical volume take
	// two).
	maxVolumes = 64

	// gptOverheadMiB is the space a GPT disk loses outside partitions: the
	// first MiB (protective MBR, primary GPT, alignment of the first
	// partition) and the last MiB (backup GPT, rounded to the 1 MiB
	// alignment every installer uses).
	gptOverheadMiB = 2
	// lvmExtentMiB is LVM's default extent size: logical volumes are
	// rounded up to it.
	lvmExtentMiB = 4
	// pvOverheadMiB is what the physical volume loses to its label and
	// metadata area (1 MiB before the first extent by default), rounded up
	// to one extent, plus the extent lost to rounding the rest down.
	pvOverheadMiB = 2 * lvmExtentMiB
)

// DefaultLayout returns the layout used when the spec gives none for the
// scheme ("" is plain): /boot/efi 512 MiB, /boot 1024 MiB, then swap 1024
// MiB and / of at least 5120 MiB growing to fill the disk, as partitions
// (plain) or as logical volumes of the volume group "vg0" on the rest of
// the disk (lvm). Every layout also starts with a 1 MiB BIOS boot
// partition, which is not part of the returned value. The result is a
// fresh copy.
func DefaultLayout(scheme string) Layout {
	return Layout{Scheme: scheme}.withDefaults()
}

// withDefaults fills in the default scheme, partitions, volume group and
// volumes.
func (l Layout) withDefaults() Layout {
	if l.Scheme == "" {
		l.Scheme = SchemePlain
	}
	if len(l.Partitions) == 0 {
		l.Partitions = []Volume{{Mount: "/boot/efi", Size: defaultESPMiB}, {Mount: "/boot", Size: defaultBootMiB}}
		if l.Scheme == SchemePlain {
			l.Partitions = append(l.Partitions,
				Volume{Mount: "swap", Size: defaultSwapMiB},
				Volume{Mount: "/", Size: defaultRootMiB, Grow: true})
		}
	} else {
		l.Partitions = slices.Clone(l.Partitions)
	}
	if l.Scheme == SchemeLVM {
		if l.LVM.VG == "" {
			l.LVM.VG = "vg0"
		}
		if len(l.LVM.Volumes) == 0 {
			l.LVM.Volumes = []Volume{{Mount: "swap", Size: defaultSwapMiB}, {Mount: "/", Size: defaultRootMiB, Grow: true}}
		} else {
			l.LVM.Volumes = slices.Clone(l.LVM.Volumes)
		}
	}
	return l
}

// MinDiskMiB returns the size in MiB of the smallest disk the layout fits
// on (defaults applied): the BIOS boot partition, every partition and
// logical volume at its size (a growing one at its minimum, a growing /
// at least 2048 MiB), plus the GPT's
// 2 MiB and, for lvm, the physical volume's label and metadata (8 MiB) and
// each logical volume rounded up to LVM's 4 MiB extents. The default plain
// layout needs 7683 MiB, the default lvm one 7691 MiB. Sizes that are not
// valid count as 0; Validate reports them.
func (l Layout) MinDiskMiB() int {
	d := l.withDefaults()
	size := func(v Volume) int {
		switch {
		case v.Size > maxVolumeMiB:
			return maxVolumeMiB
		case v.Mount == "/" && v.Grow && v.Size < minRootMiB:
			return minRootMiB
		case v.Size > 0:
			return v.Size
		case v.Grow:
			return 1
		}
		return 0
	}
	total := gptOverheadMiB + biosBootMiB
	for i, v := range d.Partitions {
		if i < maxVolumes {
			total += size(v)
		}
	}
	if d.Scheme == SchemeLVM {
		total += pvOverheadMiB
		for i, v := range d.LVM.Volumes {
			if i < maxVolumes {
				total += (size(v) + lvmExtentMiB - 1) / lvmExtentMiB * lvmExtentMiB
			}
		}
	}
	return total
}

// MinDiskMiB returns the size in MiB of the smallest disk the spec's
// layout fits on; see Layout.MinDiskMiB. The install stops with a message
// naming both sizes when the chosen disk is smaller.
func (s *Spec) MinDiskMiB() int { return s.Layout.MinDiskMiB() }
