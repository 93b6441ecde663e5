// Package isosrc serves distribution installation ISOs directly — no
// loop mount, no copy, no root — and tells what installer they hold.
//
// Open indexes an image once and returns an *Image, an fs.FS (also
// ReadDirFS, ReadFileFS, StatFS and ReadLinkFS) that passes
// testing/fstest.TestFS. Its files implement io.ReaderAt and io.Seeker and
// one Image is safe for any number of concurrent readers, so the same
// image can be handed to http.FileServerFS (with range requests) and to a
// TFTP server at once. Image.Handler serves the same tree over HTTP with
// sendfile(2) for regular files, which is several times faster than
// FileServerFS's buffered copies.
//
// go-diskfs is the ISO 9660 reader of record: it must accept the volume
// (what it reads there is bounded first). The index itself comes from
// isosrc's own bounded reader of the directory records,
// because go-diskfs v1.9 loses leading dots of Rock Ridge names
// (".treeinfo"), does not follow symbolic links ("dists/stable",
// "debian -> ."), cuts multi-extent files over 4 GiB, lists wrong
// directories on Joliet-only images, and can panic or allocate gigabytes on
// damaged images. isosrc reads Rock Ridge names and links, merges
// multi-extent files (or refuses a broken chain with ErrIncompleteFile,
// never a cut file), falls back to Joliet and then to plain ISO 9660
// names, and follows links with a loop limit.
//
// Images are untrusted input: every size, count, depth and loop is bounded
// (see Limits), a damaged image gives an error wrapping ErrBadImage, and a
// fault inside a library call is recovered into such an error. An image
// shorter than the volume it declares (an interrupted download) is refused
// with ErrTruncated. Open accepts only regular files and block devices and
// never blocks on opening (a named pipe gives ErrFileType).
//
// BootImages reads the El Torito boot catalog (BIOS and UEFI entries) and
// EFIFS opens the UEFI FAT image, for images whose tree lacks
// EFI/BOOT/BOOTX64.EFI and grubx64.efi. The FAT file system is read by
// isosrc's own reader, not go-diskfs's, which follows cluster chains
// without a bound (a looping chain made it allocate gigabytes): each
// cluster may belong to one chain only, so loops and cross-linked chains
// are refused, and directories are bounded like the ISO's.
//
// Detect reads the installer metadata (.treeinfo in productmd and older
// form, .discinfo, media.repo, .disk/info, dists/*/Release) of any fs.FS
// and returns a *Distro: installer family, name, version, architecture, the
// nearest pxekit OS identifier, kernel, initrd, shim, GRUB, stage2,
// repositories, answer-file dialect, kernel-argument style and warnings.
// DetectAs overrides detection with a known identifier. Debian ISOs carry
// a CD-ROM initrd that cannot install over the network; OpenNetboot and
// Distro.UseNetboot take kernel and initrd from Debian's netboot.tar.gz
// instead.
package isosrc
