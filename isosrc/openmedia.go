package isosrc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
)

// OpenMedia opens what one OS installs from, as an install server is told
// it: the ISO at iso (read in place; "" for none), the netboot tree at
// netboot (a directory or netboot.tar.gz, see OpenNetboot; "" for none),
// and osID to name the OS when there is no ISO or to override detection
// ("" detects it from the ISO). The Media's Distro describes the result:
// detected from the ISO and booting the netboot tree's kernel when both
// are given (Debian), or NetbootDistro for a netboot tree alone. With
// neither path, the Media is empty and Distro nil. Errors name the file
// and the problem; nothing stays open after an error. Close the Media when
// done.
func OpenMedia(iso, netboot, osID string, lim Limits) (*Media, error) {
	m := &Media{ISOFile: iso}
	fail := func(err error) (*Media, error) {
		m.Close()
		return nil, err
	}
	if iso != "" {
		img, err := Open(iso, lim)
		if err != nil {
			return nil, err
		}
		m.ISO = img
		if osID != "" {
			m.Distro, err = DetectAs(img, osID)
		} else {
			m.Distro, err = Detect(img)
		}
		if err != nil {
			return fail(fmt.Errorf("%s: %w", iso, err))
		}
	}
	if netboot != "" {
		nb, err := OpenNetboot(netboot)
		if err != nil {
			return fail(fmt.Errorf("netboot %s: %w", netboot, err))
		}
		m.Netboot = nb
		if m.Distro != nil {
			m.Distro, err = m.Distro.WithNetboot(nb)
		} else {
			m.Distro, err = NetbootDistro(osID, nb)
		}
		if err != nil {
			return fail(fmt.Errorf("netboot %s: %w", netboot, err))
		}
	}
	return m, nil
}

// Close closes the ISO and the netboot tree when they can be closed.
func (m *Media) Close() error {
	var errs []error
	for _, f := range []fs.FS{m.ISO, m.Netboot} {
		if c, ok := f.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Loaders returns where the media's own boot loaders are: the ISO's shim
// and GRUB (Distro.Loaders), and the netboot tree. Without an ISO image or
// a Distro only Netboot is set, which leaves UEFI x86-64 to the host's
// loaders. On error it still returns Netboot, for a caller that falls back
// to the host's loaders.
func (m *Media) Loaders() (Loaders, error) {
	img, ok := m.ISO.(*Image)
	if !ok || m.Distro == nil {
		return Loaders{Netboot: m.Netboot}, nil
	}
	l, err := m.Distro.Loaders(img)
	l.Netboot = m.Netboot
	return l, err
}

// BootFiles returns the installer kernel and initrd paths in the boot
// tree (Media.BootTree): the netboot tree's when WithNetboot set them, else
// the ISO's. Both are empty when detection found none; a menu then falls
// back to its own table of usual paths.
func (d *Distro) BootFiles() (kernel string, initrds []string) {
	k, i := d.Kernel, d.Initrd
	if d.NetbootKernel != "" {
		k, i = d.NetbootKernel, d.NetbootInitrd
	}
	if k == "" || i == "" {
		return "", nil
	}
	return path.Clean(k), []string{path.Clean(i)}
}
