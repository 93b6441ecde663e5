// Package isosrc serves distribution installation ISOs directly — no
// loop mount, no copy, no root — and tells what installer they hold.
//
// Open indexes an image once, within Limits (the zero value gives the
// defaults), and returns an *Image, an fs.FS (also
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
// and returns a *Distro: installer Family, name, version, architecture,
// the nearest pxekit OS identifier (OS, OSes and LookupOS show the table;
// answerfile and bootmenu accept the same identifiers), kernel, initrd,
// shim, GRUB, stage2, repositories, answer-file dialect, kernel-argument
// style and warnings. DetectAs overrides detection with a known identifier.
// isosrc does not change a Distro once returned. Distro.Loaders says
// where the image's own shim and GRUB are (its tree or its El Torito UEFI
// image) and whether Secure Boot needs that pair rather than the host's;
// Distro.BootFiles gives the kernel and initrd to boot.
//
// Debian ISOs carry a CD-ROM initrd that cannot install over the network:
// OpenNetboot opens Debian's netboot.tar.gz or its unpacked directory (the
// directory confined with os.Root, regular files only, never blocking on a
// named pipe), Distro.WithNetboot returns a copy that boots its kernel and
// initrd, and NetbootDistro describes a netboot tree given without an ISO.
//
// Media puts one OS's sources in an HTTP namespace below a prefix: the
// ISO's tree as iso/, the ISO file as image.iso (which Ubuntu's live
// installer downloads), and the tree holding kernel and initrd as boot/.
// Media.Handler serves them, content only; Media.RepoURL is the install
// source the kernel line names for each installer family. OpenMedia opens
// an ISO and a netboot tree as an install server is told them and detects
// the OS: the one call a composer needs.
//
// The HTTP side of an install server, for whoever answers anyone on a
// network segment: FileServer serves any tree's regular files (never a
// listing, sendfile for images and *os.File trees), NewHTTPServer bounds
// each client (header, request and idle timeouts, and a write deadline that
// moves with each MiB sent, so long downloads live and stalled readers do
// not), LimitListener caps connections without hiding the TCP connection
// from sendfile, and ContentOnly answers GET and HEAD of sane paths only.
// Observe reports each response once written (an HTTPEvent, as
// tftpsrv.Event for TFTP), so that a boot server logs the files a client
// received whole as its steps, not the ones it asked for.
package isosrc
