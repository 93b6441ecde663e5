package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
	"github.com/pxekit/pxekit/internal/vmtest"
	"github.com/pxekit/pxekit/isosrc"
)

// TestFirmwareTargets proves, on real firmware, the kernel command line
// that every supported installer receives from examples/minimal. Running 15
// real installers is out of reach (their ISOs are gigabytes, and none can be
// downloaded in CI), so each target is a stand-in: an ISO with that
// distribution's real layout and metadata (the reconstructed trees of
// isosrc/testdata/distros, which isosrc detects), in which the
// distribution's kernel and initrd are Debian 12's installer kernel and a
// tiny busybox initramfs that prints /proc/cmdline to the serial console and
// powers off, and whose EFI loaders are Debian's signed shim and network
// GRUB placed where that distribution keeps them, so that loader discovery
// for the layout runs. What is proved: detection of the layout, the loader
// chain (OVMF PXE -> shim -> GRUB, or SeaBIOS -> pxelinux/iPXE), the menu
// GRUB/pxelinux/iPXE read, every kernel argument that arrives (compared
// with the arguments each installer's documentation requires, cited in
// documentedArgs), and that the URLs in them answer (HEAD). What is not:
// that the real installers accept the arguments, nor the vendors' own GRUB
// builds: Debian's GRUB reads every dialect's menu here, with its http
// module loaded from the server (see grubModules), and minimal serves HTTP
// on port 80 so that the menus name (http,host) without a port: the
// host:port form is Red Hat's patch (bootmenu.GRUBDialect.HTTPPort), which
// Debian's module is not expected to carry and which is not tested here.
//
// Debian 9, 10 and 11 are served as minimal serves them: the ISO (the
// netinst layout, for detection and as the package source) plus a netboot
// tree (-netboot), because their ISO initrds cannot install over the
// network; the netboot tree holds the stand-in kernel and initrd.
func TestFirmwareTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("firmware targets: skipped in -short mode (boots QEMU, about a minute per target)")
	}
	vmtest.Require(t)
	need := map[string]string{
		standInKernel:  "debian-installer-12-netboot-amd64",
		debianShim:     "shim-signed",
		debianGRUB:     "grub-efi-amd64-signed",
		"/bin/busybox": "busybox",
		grubHTTPMod:    "grub-efi-amd64-bin",
	}
	for f, pkg := range need {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("firmware targets: skipped: %s is missing (Debian package %s)", f, pkg)
		}
	}
	for _, tool := range []string{"xorriso", "mkfs.vfat", "mcopy", "mmd", "ldd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("firmware targets: skipped: %s is not installed (Debian packages xorriso, dosfstools, mtools, libc-bin)", tool)
		}
	}
	bin := buildMinimal(t)
	initrd := standInInitrd(t)

	var cases []targetCase
	mac := 0x10
	for _, in := range isosrc.OSes() {
		if in.ID == "debian-12" {
			continue // TestFirmwareE2E boots Debian 12's real installer
		}
		loaders := []string{"uefi-grub"}
		switch in.ID {
		case "rocky-9.0", "ubuntu-22.04", "debian-11":
			// One target per installer family through the other loaders.
			loaders = append(loaders, "bios-pxelinux", "bios-ipxe")
		}
		for _, l := range loaders {
			cases = append(cases, targetCase{os: in, loader: l, mac: fmt.Sprintf("52:54:00:7a:00:%02x", mac)})
			mac++
		}
	}

	// Measured on a loaded 2-core host: 21 boots took 15.5 minutes of wall
	// clock. go test's default -timeout (10m, shared with TestFirmwareE2E)
	// would end the whole binary with a panic midway.
	const budget = 25 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl) < budget {
		t.Skipf("firmware targets: skipped: %d boots need up to %s and go test's -timeout leaves %s; run with -timeout 60m",
			len(cases), budget, time.Until(dl).Round(time.Second))
	}

	// At most two VMs at once: TCG emulation costs a host core per VM.
	sem := make(chan struct{}, 2)
	var mu sync.Mutex
	took := map[string]time.Duration{}
	start := time.Now()
	t.Run("group", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.os.ID+"/"+c.loader, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				d := runTarget(t, bin, initrd, c)
				mu.Lock()
				took[c.os.ID+"/"+c.loader] = d
				mu.Unlock()
			})
		}
	})
	names := make([]string, 0, len(took))
	for n := range took {
		names = append(names, n)
	}
	sort.Strings(names)
	var sum time.Duration
	for _, n := range names {
		t.Logf("%-30s power-on to command line: %5.1f s", n, took[n].Seconds())
		sum += took[n]
	}
	t.Logf("%d boots, %.1f s of VM time, %.1f s wall clock (2 VMs at a time)", len(took), sum.Seconds(), time.Since(start).Seconds())
}

// Stand-in boot files from the Debian 12 host.
const (
	standInKernel = debianNetboot + "/debian-installer/amd64/linux"
	debianShim    = "/usr/lib/shim/shimx64.efi.signed"
	debianGRUB    = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
	// grubHTTPMod must be of the signed GRUB's version (Debian keeps
	// grub-efi-amd64-bin and -signed in step).
	grubHTTPMod = "/usr/lib/grub/x86_64-efi/http.mod"
)

// targetCase is one boot: a target OS through one loader chain.
type targetCase struct {
	os     isosrc.OS
	loader string // uefi-grub, bios-pxelinux or bios-ipxe
	mac    string
}

// cmdlineRE finds what the stand-in /init printed.
var cmdlineRE = regexp.MustCompile(`(?s)PXEKIT-CMDLINE-BEGIN\r*\n(.*?)\r*\nPXEKIT-CMDLINE-END`)

func runTarget(t *testing.T, bin, initrd string, c targetCase) time.Duration {
	layout := c.os.ID
	if c.os.Family == isosrc.FamilyDebianInstaller {
		layout += "-netinst"
	}
	tr := readLayout(t, filepath.Join("..", "..", "isosrc", "testdata", "distros", layout+".txtar"))
	iso, netboot := standInMedia(t, tr, c.os, initrd)

	lab := vmtest.NewLab(t, vmtest.LabConfig{})
	args := []string{
		"-iface", lab.Iface(), "-iso", iso, "-root", grubModules(t),
		// Port 80: (http,host) without a port, for the stand-in GRUB's
		// http module (see grubModules).
		"-http-addr", ":80",
		"-console", "ttyS0,115200n8", "-dns", lab.ServerIP().String(),
		"-args", "no_timer_check", // see startInLab
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150",
		"-demo-password", // a throw-away VM on the test's own network
	}
	if netboot != "" {
		args = append(args, "-netboot", netboot)
	}
	vm := vmtest.VMConfig{Firmware: vmtest.UEFI, MAC: c.mac, MemoryMB: 512}
	switch c.loader {
	case "bios-pxelinux":
		vm.Firmware = vmtest.BIOS
		args = append(args, "-ipxe=false")
	case "bios-ipxe":
		vm.Firmware = vmtest.BIOS
	}
	srv := lab.Start(t, "minimal", bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if _, err := srv.WaitLog(ctx, regexp.MustCompile(`pxekit serving on`)); err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	log, err := os.ReadFile(srv.LogPath())
	require.NoError(t, err)
	// Loader discovery for the layout: the distribution's own pair from the
	// ISO, except for Debian, whose host pair is preferred.
	origins := []string{`shimx64.efi <- iso:EFI/BOOT/BOOTX64.EFI\n`, `grubx64.efi <- iso:EFI/BOOT/grubx64.efi\n`}
	if c.os.Family == isosrc.FamilyDebianInstaller {
		origins = []string{`shimx64.efi <- ` + debianShim, `grubx64.efi <- ` + debianGRUB}
	}
	for _, o := range origins {
		assert.Regexp(t, regexp.MustCompile(`(?i)`+o), string(log), "loaders not taken from where %s keeps them", c.os.ID)
	}

	v := lab.Boot(t, vm)
	line, err := v.WaitSerial(ctx, regexp.MustCompile(`PXEKIT-CMDLINE-END|Failed to boot both|Kernel panic|No more network devices`))
	if err != nil || !strings.Contains(line, "PXEKIT-CMDLINE-END") {
		t.Fatalf("the stand-in kernel never printed its command line: %v %q\n%s", err, line, v.TimelineString())
	}
	d := v.Mark("cmdline")
	serial, err := os.ReadFile(v.SerialPath())
	require.NoError(t, err)
	m := cmdlineRE.FindSubmatch(serial)
	require.NotNil(t, m, "markers not found in the serial log")
	// A carriage return is the serial console's (its output interleaves
	// with the kernel's under load, seen once on the iPXE path); the
	// kernel line itself never holds one.
	raw := strings.TrimSpace(strings.ReplaceAll(string(m[1]), "\r", ""))
	got := splitCmdline(raw)
	t.Logf("%s via %s: /proc/cmdline after %.1f s:\n%s", c.os.ID, c.loader, d.Seconds(), raw)

	base := "http://" + lab.ServerIP().String() + "/"
	for _, w := range documentedArgs(c.os, base, c.mac) {
		vals, ok := got[w.key]
		if !assert.True(t, ok, "%s: %s missing from the kernel command line (%s)", c.os.ID, w.key, w.doc) {
			continue
		}
		assert.Equal(t, []string{w.value}, vals, "%s: %s (%s)", c.os.ID, w.key, w.doc)
	}

	// The URLs the kernel received lead to what the installer will fetch.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := lab.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	for _, u := range installerFetches(c.os, got) {
		resp, err := client.Head(u)
		if assert.NoError(t, err, u) {
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "HEAD %s", u)
		}
	}

	log, err = os.ReadFile(srv.LogPath())
	require.NoError(t, err)
	stages := map[string][]string{
		"uefi-grub": {`stage=bootloader mac=%s .*detail=shimx64.efi`, `stage=bootloader mac=%s .*detail=grubx64.efi`,
			`stage=menu mac=%s .*detail=grub/grub.cfg`, `stage=kernel mac=%s`, `stage=initrd mac=%s`},
		"bios-pxelinux": {`stage=bootloader mac=%s .*detail=pxelinux.0`, `stage=menu mac=%s .*detail=pxelinux.cfg/`,
			`stage=kernel mac=%s`, `stage=initrd mac=%s`},
		"bios-ipxe": {`stage=menu mac=%s .*detail=boot.ipxe`, `stage=kernel mac=%s .*proto=http`, `stage=initrd mac=%s .*proto=http`},
	}[c.loader]
	for _, st := range stages {
		re := regexp.MustCompile(fmt.Sprintf(st, regexp.QuoteMeta(c.mac)))
		assert.True(t, re.Match(log), "server log lacks %q", re)
	}
	return d
}

// wantArg is one argument an installer documents as needed for an
// unattended network install, with the value minimal must give it.
type wantArg struct{ key, value, doc string }

// Documentation cited below:
const (
	docAnaconda = "anaconda boot options, https://anaconda-installer.readthedocs.io/en/latest/boot-options.html"
	docDracut   = "dracut.cmdline(7), BOOTIF (the form pxelinux's IPAPPEND 2 writes)"
	docUbuntuNB = "Ubuntu Server docs, 'How to netboot the server installer on amd64' (ip=dhcp url=ISO cloud-config-url=/dev/null)"
	docUbuntuAI = "Ubuntu autoinstall docs, 'Providing autoinstall configuration' / quick start (autoinstall ds=nocloud-net;s=URL/, ds=nocloud;s=URL/ from 24.04; ';' must reach the kernel)"
	docUbuntu20 = "Ubuntu 20.04 live-server netboot (casper loads the ISO into a RAM disk: root=/dev/ram0 ramdisk_size=)"
	docDI       = "Debian installation guide, appendix B.2.2/B.4 (auto=true priority=critical url=) and B.2.3 (netcfg questions asked before the preseed loads)"
	docDIAlias  = "Debian installation guide, appendix B.2.3 aliases (interface=auto is netcfg/choose_interface)"
	docConsole  = "kernel-parameters.txt, console= (the stand-in prints on ttyS0)"
)

// documentedArgs is the table: for each installer family, the arguments
// its documentation requires for an unattended network install from
// minimal's server at base (ISO tree at iso/, ISO file at image.iso,
// answers at answer/), for the client with MAC mac.
func documentedArgs(in isosrc.OS, base, mac string) []wantArg {
	bootif := "01-" + strings.ReplaceAll(mac, ":", "-")
	console := wantArg{"console", "ttyS0,115200n8", docConsole}
	switch in.Family {
	case isosrc.FamilyAnaconda:
		return []wantArg{
			{"inst.repo", base + "iso/", docAnaconda + " (inst.repo=http://host/path: an installable tree with .treeinfo)"},
			{"inst.ks", base + "answer/ks.cfg", docAnaconda + " (inst.ks=http://host/path)"},
			{"BOOTIF", bootif, docDracut + "; " + docAnaconda + " (network: ip= or BOOTIF)"},
			console,
		}
	case isosrc.FamilySubiquity:
		ds := "nocloud-net"
		if in.Major >= 24 {
			ds = "nocloud"
		}
		w := []wantArg{
			{"ip", "dhcp", docUbuntuNB},
			{"url", base + "image.iso", docUbuntuNB},
			{"cloud-config-url", "/dev/null", docUbuntuNB},
			{"autoinstall", "", docUbuntuAI},
			{"ds", ds + ";s=" + base + "answer/seed/", docUbuntuAI},
			console,
		}
		if in.Major <= 20 {
			w = append(w, wantArg{"root", "/dev/ram0", docUbuntu20}, wantArg{"ramdisk_size", "1500000", docUbuntu20})
		}
		return w
	default:
		return []wantArg{
			{"auto", "true", docDI},
			{"priority", "critical", docDI},
			{"url", base + "answer/preseed.cfg", docDI},
			{"interface", "auto", docDIAlias},
			// minimal's demo spec names the host "demo" and no domain,
			// which d-i documents as "unassigned-domain".
			{"netcfg/get_hostname", "demo", docDI},
			{"netcfg/get_domain", "unassigned-domain", docDI},
			console,
		}
	}
}

// installerFetches lists what the installer will download first, from the
// arguments it received: anaconda's tree (.treeinfo) and kickstart,
// casper's ISO and the NoCloud seed, d-i's preseed file.
func installerFetches(in isosrc.OS, got map[string][]string) []string {
	first := func(k string) string {
		if v := got[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var out []string
	switch in.Family {
	case isosrc.FamilyAnaconda:
		out = []string{first("inst.repo") + ".treeinfo", first("inst.ks")}
	case isosrc.FamilySubiquity:
		out = []string{first("url")}
		if _, seed, ok := strings.Cut(first("ds"), ";s="); ok {
			out = append(out, seed+"user-data", seed+"meta-data")
		}
	default:
		out = []string{first("url")}
	}
	return out
}

// splitCmdline splits /proc/cmdline as the kernel's parser does: words
// separated by spaces, double quotes grouping (and removed). Flags map to
// "".
func splitCmdline(s string) map[string][]string {
	out := map[string][]string{}
	var words []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQ, have = !inQ, true
		case (r == ' ' || r == '\t' || r == '\n') && !inQ:
			if have {
				words = append(words, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// readLayout reads one of isosrc's reconstructed distribution trees
// (format: [testutil.ReadTxtar]).
func readLayout(t *testing.T, p string) testutil.Txtar {
	t.Helper()
	tr := testutil.ReadTxtar(t, p)
	require.NotEmpty(t, tr.Files, p)
	return tr
}

// standInMedia writes the stand-in ISO for in from its layout, and for
// Debian a netboot tree; it returns their paths ("" for no netboot tree).
func standInMedia(t *testing.T, tr testutil.Txtar, in isosrc.OS, initrd string) (iso, netboot string) {
	t.Helper()
	kernel, err := os.ReadFile(standInKernel)
	require.NoError(t, err)
	rd, err := os.ReadFile(initrd)
	require.NoError(t, err)
	shim, err := os.ReadFile(debianShim)
	require.NoError(t, err)
	grub, err := os.ReadFile(debianGRUB)
	require.NoError(t, err)

	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	efiOnly := true // loaders only in the El Torito image (Kylin's layout)
	for p := range tr.Files {
		if strings.HasPrefix(strings.ToUpper(p), "EFI/") {
			efiOnly = false
		}
	}
	for p, content := range tr.Files {
		dir, base := path.Split(p)
		switch {
		case strings.EqualFold(p, "EFI/BOOT/BOOTX64.EFI"):
			content = shim
		case strings.EqualFold(p, "EFI/BOOT/grubx64.efi"):
			content = grub
		case (dir == "images/pxeboot/" || dir == "casper/" || dir == "install.amd/") && strings.Contains(base, "vmlinuz"):
			content = kernel
		case (dir == "images/pxeboot/" || dir == "casper/" || dir == "install.amd/") && strings.HasPrefix(base, "initrd"):
			content = rd
		}
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, content, 0o644))
	}
	for p, target := range tr.Links {
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.Symlink(target, full))
	}
	iso = filepath.Join(tmp, in.ID+".iso")
	args := []string{"-as", "mkisofs", "-quiet", "-R", "-J", "-joliet-long", "-V", "PXEKIT_STANDIN", "-o", iso}
	if efiOnly {
		// The El Torito UEFI image, a FAT file system holding the pair.
		img := filepath.Join(root, "images", "efiboot.img")
		require.NoError(t, os.MkdirAll(filepath.Dir(img), 0o755))
		runTool(t, "mkfs.vfat", "-C", "-n", "EFIBOOT", img, "8192")
		runTool(t, "mmd", "-i", img, "::/EFI", "::/EFI/BOOT")
		for name, content := range map[string][]byte{"BOOTX64.EFI": shim, "grubx64.efi": grub} {
			f := filepath.Join(tmp, name)
			require.NoError(t, os.WriteFile(f, content, 0o644))
			runTool(t, "mcopy", "-i", img, f, "::/EFI/BOOT/"+name)
		}
		args = append(args, "-e", "images/efiboot.img", "-no-emul-boot")
	}
	runTool(t, "xorriso", append(args, root)...)

	if in.Family == isosrc.FamilyDebianInstaller {
		netboot = filepath.Join(tmp, "netboot")
		files := map[string][]byte{
			"debian-installer/amd64/linux":     kernel,
			"debian-installer/amd64/initrd.gz": rd,
			"version.info":                     []byte("Debian version:  " + in.Version + " (" + in.Codename + ")\n"),
		}
		for p, content := range files {
			full := filepath.Join(netboot, filepath.FromSlash(p))
			require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
			require.NoError(t, os.WriteFile(full, content, 0o644))
		}
	}
	return iso, netboot
}

// grubModules returns a -root directory holding GRUB's http module, which
// the stand-in GRUB loads from its prefix (grub/x86_64-efi/ on the server)
// when a menu in the EL8, EL9 or Kylin/UOS dialect loads the kernel over
// HTTP. The vendors' own GRUB builds have the module built in; Debian's
// signed network image has only tftp, and (without Secure Boot, as here)
// loads modules of its own version from the network.
func grubModules(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(grubHTTPMod)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "extra")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "grub", "x86_64-efi"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "grub", "x86_64-efi", "http.mod"), data, 0o644))
	return dir
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
}

// standInInit is the stand-in installer: print the command line between
// markers on the console, then power off.
const standInInit = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo
echo PXEKIT-CMDLINE-BEGIN
/bin/busybox cat /proc/cmdline
echo PXEKIT-CMDLINE-END
/bin/busybox poweroff -f
`

// standInInitrd builds the stand-in initramfs (gzip'ed newc cpio) from the
// host's busybox and the libraries ldd names for it.
func standInInitrd(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ldd", "/bin/busybox").Output()
	require.NoError(t, err, "ldd /bin/busybox")
	var c cpioWriter
	c.dir("dev", 0o755)
	c.node("dev/console", 0o20600, 5, 1)
	c.dir("proc", 0o755)
	made := map[string]bool{"dev": true, "proc": true}
	add := func(p string, mode uint32) {
		data, err := os.ReadFile(p) // follows symbolic links
		require.NoError(t, err)
		rel := strings.TrimPrefix(p, "/")
		var parent string
		for _, el := range strings.Split(path.Dir(rel), "/") {
			parent = path.Join(parent, el)
			if !made[parent] {
				c.dir(parent, 0o755)
				made[parent] = true
			}
		}
		c.file(rel, mode, data)
	}
	add("/bin/busybox", 0o755)
	for _, m := range regexp.MustCompile(`(?m)(?:=>\s*)?(/\S+)\s+\(0x`).FindAllStringSubmatch(string(out), -1) {
		add(m[1], 0o755)
	}
	c.file("init", 0o755, []byte(standInInit))
	c.trailer()

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(c.buf.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	p := filepath.Join(t.TempDir(), "standin-initrd.gz")
	require.NoError(t, os.WriteFile(p, gz.Bytes(), 0o644))
	return p
}

// cpioWriter writes the "newc" cpio format the kernel unpacks.
type cpioWriter struct {
	buf bytes.Buffer
	ino uint32
}

func (c *cpioWriter) entry(name string, mode uint32, rmaj, rmin uint32, data []byte) {
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(&c.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.pad()
	c.buf.Write(data)
	c.pad()
}

func (c *cpioWriter) pad() {
	for c.buf.Len()%4 != 0 {
		c.buf.WriteByte(0)
	}
}

func (c *cpioWriter) dir(name string, perm uint32) { c.entry(name, 0o040000|perm, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, 0o100000|perm, 0, 0, data)
}
func (c *cpioWriter) node(name string, mode, maj, min uint32) { c.entry(name, mode, maj, min, nil) }
func (c *cpioWriter) trailer()                                { c.entry("TRAILER!!!", 0, 0, 0, nil) }
