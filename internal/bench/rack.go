package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
)

// The rack suite boots the fleet suite's simulated UEFI machines against
// two stacks, one after the other in fresh namespaces: examples/fleet
// (full DHCP, TFTP for the loaders, the menu and GRUB's http module, HTTP
// for kernel, initrd and the answer file as its menu says when Secure Boot
// is off, TFTP for kernel and initrd when it is on; see rackSecureBootEnv)
// and the classic stack it replaces, as
// the tutorials set it up: isc-dhcp-server (next-server and filename by
// client architecture), tftpd-hpa serving shim, GRUB, grub.cfg, kernel and
// initrd (GRUB then loads kernel and initrd over its lock-step TFTP, blksize
// 1024, because that is where a bare path in grub.cfg points), and nginx
// (sendfile on) serving one answer file per host. Both stacks serve the
// same files: Debian 12's netboot kernel and initrd, the host's signed shim
// and GRUB, a preseed per host rendered from the same spec as fleet's.
//
// Every daemon of a stack runs inside the suite's server namespace, with
// configuration, leases, pid files and logs in a temporary directory; no
// system service is started, stopped or reconfigured.
const (
	// rackDHCPEnv set to "dnsmasq" uses dnsmasq as the classic stack's DHCP
	// server (DHCP only, -p0) instead of isc-dhcp-server, for hosts where
	// AppArmor keeps dhcpd from reading a configuration outside /etc/dhcp.
	rackDHCPEnv = "PXEKIT_BENCH_RACK_DHCP"
	// rackSizesEnv overrides the client counts, comma-separated ("1,5").
	rackSizesEnv = "PXEKIT_BENCH_RACK_SIZES"
	// rackSecureBootEnv set to "on" boots the simulated machines with
	// Secure Boot on; "off" (the default) with it off. Their GRUB is
	// Debian's signed grubnetx64.efi, which has no http module built in:
	// with Secure Boot off it loads the module fleet serves (the insmod in
	// fleet's menu) and then kernel and initrd over HTTP; with it on, GRUB
	// refuses the module and loads them by bare path over its lock-step
	// TFTP. The classic stack's menu names bare paths: TFTP either way.
	rackSecureBootEnv = "PXEKIT_BENCH_RACK_SECUREBOOT"
	// rackLimit bounds one measurement's client process.
	rackLimit = 15 * time.Minute
)

var rackSizes = []int{1, 50, 200}

// rackPackages are the Debian packages the suite needs.
var rackPackages = []string{"iproute2", "isc-dhcp-server", "dnsmasq-base", "tftpd-hpa", "nginx-light", "debian-installer-12-netboot-amd64", "shim-signed", "grub-efi-amd64-signed", "grub-efi-amd64-bin"}

// rackMeasure is one stack booting n clients at once.
type rackMeasure struct {
	fleetMeasure
	// stackCPU is the CPU of every process in the server namespace
	// during the boot: utime+stime, plus cutime+cstime for children
	// that exited and were reaped (tftpd-hpa forks one per transfer).
	stackCPU time.Duration
	// stackHWM sums VmHWM over the processes alive at the end.
	stackHWM int64
	// peakRSS is the largest sum of VmRSS over the namespace's processes
	// seen in samples every 100 ms (forked children included).
	peakRSS int64
	procs   int // most processes seen at once in the namespace
}

// rackStack is one of the stacks compared.
type rackStack struct {
	name string
	job  fleetJob // without MACs
	// start starts the stack in n's server namespace, in cgroup cg
	// unless it is empty, and returns once it serves; stop ends every
	// process it started.
	start func(ctx context.Context, n *benchNet, tag, cg string) (stop func(), err error)
}

func runRack(ctx context.Context, e *env) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if err := e.install(ctx, rackPackages...); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sizes := rackSizes
	if v := os.Getenv(rackSizesEnv); v != "" {
		if sizes, err = parseSizes(v, 500); err != nil {
			return fmt.Errorf("%s: %w", rackSizesEnv, err)
		}
	}
	hosts := 0
	for _, n := range sizes {
		hosts = max(hosts, n)
	}
	dir, err := os.MkdirTemp("", "bench-rack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, "fleet")
	if err := buildFleetBinary(ctx, bin); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(fleetDebianNetboot, "debian-installer/amd64/initrd.gz")); err != nil {
		return fmt.Errorf("the Debian netboot tree: %w (apt-get install debian-installer-12-netboot-amd64)", err)
	}
	macs := make([]string, hosts)
	for i := range macs {
		macs[i] = net.HardwareAddr{0x02, 0xfe, 0, 0, byte((i + 1) >> 8), byte(i + 1)}.String()
	}
	inv := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(inv, fleetInventory(macs, fleetDebianNetboot), 0o644); err != nil {
		return err
	}
	sums, err := fleetSums(fleetDebianNetboot)
	if err != nil {
		return err
	}
	secureBoot := false
	switch v := os.Getenv(rackSecureBootEnv); v {
	case "", "off":
	case "on":
		secureBoot = true
	default:
		return fmt.Errorf("%s=%q: want on or off", rackSecureBootEnv, v)
	}
	if err := rackModuleSum(sums); err != nil {
		return fmt.Errorf("GRUB's http module: %w", err)
	}
	dhcp := "dhcpd"
	if os.Getenv(rackDHCPEnv) == "dnsmasq" {
		dhcp = "dnsmasq"
	}
	classicDir := filepath.Join(dir, "classic")
	if err := writeClassicTree(classicDir, macs); err != nil {
		return err
	}
	classicSums := maps.Clone(sums)
	for _, rel := range []string{"debian-installer/amd64/linux", "debian-installer/amd64/initrd.gz"} {
		classicSums[rel] = sums["profiles/"+fleetProfile+"/boot/"+rel]
	}
	stacks := []rackStack{
		{name: "pxekit", job: fleetJob{Sums: sums, Answer: "preseed.cfg", KernelTFTP: true, SecureBoot: secureBoot},
			start: func(ctx context.Context, n *benchNet, tag, cg string) (func(), error) {
				srv, err := startFleetServer(ctx, fleetSetup{self: self, bin: bin, inventory: inv, dir: dir, tag: tag, cgroup: cg}, n)
				if err != nil {
					return nil, err
				}
				return srv.stop, nil
			}},
		{name: "classic", job: fleetJob{Sums: classicSums, Answer: "preseed.cfg", KernelTFTP: true, SecureBoot: secureBoot, HTTPPort: 80, AnswerPath: "/hosts/{mac}/preseed.cfg"},
			start: func(ctx context.Context, n *benchNet, tag, cg string) (func(), error) {
				return startClassic(ctx, n, classicDir, self, cg, dhcp)
			}},
	}
	fmt.Fprintf(e.out, "classic stack: %s, tftpd-hpa %s, nginx (sendfile on); kernel+initrd over TFTP (GRUB: blksize 1024, lock-step)\n", dhcp, "-s (blksize as the client asks)")
	fmt.Fprintln(e.out, rackPxekitLine(secureBoot, sums))
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(e.out, "load average before: %s", l)
	}

	got := make([][][]rackMeasure, len(sizes)) // [size][stack][run]
	for si := range sizes {
		got[si] = make([][]rackMeasure, len(stacks))
	}
	for run := 0; run < e.runs; run++ {
		for si, n := range sizes {
			// Alternate which stack goes first, so that drift in the
			// machine's load falls on both alike.
			order := []int{0, 1}
			if run%2 == 1 {
				order = []int{1, 0}
			}
			for _, k := range order {
				st := stacks[k]
				job := st.job
				job.MACs = macs[:n]
				m, err := measureRack(ctx, self, st, job, fmt.Sprintf("r%d%c%d", run, 'a'+k, si))
				if err != nil {
					return fmt.Errorf("%s, run %d, %d client(s): %w", st.name, run+1, n, err)
				}
				load, _ := os.ReadFile("/proc/loadavg")
				fmt.Fprintf(e.out, "run %d: %-7s %3d client(s): last answer file after %.2f s, %d failed, stack CPU %.2f s, load %s",
					run+1, st.name, n, m.total.Seconds(), m.failed, m.stackCPU.Seconds(), load)
				got[si][k] = append(got[si][k], m)
			}
		}
	}
	for si, n := range sizes {
		rackTable(e.out, n, stacks, got[si])
	}
	for si, n := range sizes {
		p, c := rackTotals(got[si][0]), rackTotals(got[si][1])
		ratio := "n/a"
		if p > 0 && c > 0 {
			ratio = fmt.Sprintf("%.2f", c/p)
		}
		fmt.Fprintf(e.out, "RESULT rack clients=%d secureboot=%s pxekit_s=%.2f classic_s=%.2f ratio=%s\n", n, onOff(secureBoot), p, c, ratio)
	}
	return nil
}

// rackPxekitLine says how the simulated machines load fleet's kernel and
// initrd in this run.
func rackPxekitLine(secureBoot bool, sums map[string]fleetSum) string {
	const head = "pxekit: examples/fleet, full DHCP; "
	switch _, mod := sums[bootmenu.LoaderGRUBHTTPMod]; {
	case secureBoot:
		return head + "Secure Boot on (" + rackSecureBootEnv + "=on): GRUB refuses its http module, kernel+initrd over TFTP (blksize 1024, lock-step)"
	case mod:
		return head + "Secure Boot off (" + rackSecureBootEnv + "=on for the other case): GRUB loads " + bootmenu.LoaderGRUBHTTPMod + " over TFTP, then kernel+initrd over HTTP\n" +
			"  (GRUB's TCP: MSS 536, 8 KiB window; the firmware's per-packet cost is not simulated, and on OVMF one GRUB read HTTP slower than TFTP: an upper bound)"
	default:
		return head + "Secure Boot off, but the host has no http module matching its GRUB (grub-efi-amd64-bin): kernel+initrd over TFTP (blksize 1024, lock-step)"
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// parseSizes reads a comma-separated list of client counts, each 1..limit.
func parseSizes(s string, limit int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > limit {
			return nil, fmt.Errorf("client count %q: want 1..%d", f, limit)
		}
		out = append(out, v)
	}
	return out, nil
}

// rackTotals is the median time to the last answer file over runs in
// which every client got it; 0 when no run did.
func rackTotals(ms []rackMeasure) float64 {
	var xs []float64
	for _, m := range ms {
		if m.failed == 0 {
			xs = append(xs, m.total.Seconds())
		}
	}
	return median(xs)
}

// measureRack boots job's clients against a fresh stack in fresh
// namespaces and accounts every process of the stack.
func measureRack(ctx context.Context, self string, st rackStack, job fleetJob, tag string) (rackMeasure, error) {
	m := rackMeasure{fleetMeasure: fleetMeasure{clients: len(job.MACs)}}
	n, err := newBenchNet(ctx, tag)
	if err != nil {
		return m, err
	}
	defer n.close()
	cg, removeCG, err := newCountingCgroup(tag)
	if err != nil {
		// Without a cgroup, CPU comes from /proc, which misses children
		// the kernel reaped on its own.
		fmt.Fprintf(os.Stderr, "rack: no cgroup to count CPU in (%v); stack CPU from /proc, a lower bound\n", err)
		cg = ""
	} else {
		defer removeCG()
	}
	started := time.Now()
	stop, err := st.start(ctx, n, tag, cg)
	if err != nil {
		return m, err
	}
	defer stop()
	m.startup = time.Since(started)
	ino, err := nsInode(n.srvNS)
	if err != nil {
		return m, err
	}
	before := nsUsage(ino)
	peak := before
	cgBefore := time.Duration(-1)
	if cg != "" {
		cgBefore = cgroupCPU(cg)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				u := nsUsage(ino)
				peak.rss, peak.procs = max(peak.rss, u.rss), max(peak.procs, u.procs)
			}
		}
	}()
	res, clientCPU, err := runClientProcess(ctx, self, n, job, rackLimit)
	close(done)
	wg.Wait()
	if err != nil {
		return m, err
	}
	after := nsUsage(ino)
	m.stackCPU = after.cpu - before.cpu
	if cgAfter := cgroupCPU(cg); cg != "" && cgBefore >= 0 && cgAfter >= cgBefore {
		m.stackCPU = cgAfter - cgBefore
	}
	m.stackHWM = after.hwm
	m.peakRSS = max(peak.rss, after.rss)
	m.procs = max(peak.procs, after.procs)
	m.clientCPU = clientCPU
	m.addResults(res)
	return m, nil
}

// ---------------------------------------------------------------- /proc

// procStat is what the suite reads of /proc/PID/stat.
type procStat struct {
	utime, stime, cutime, cstime int64 // clock ticks
}

// parseProcStat reads utime, stime, cutime and cstime (fields 14 to 17)
// from the text of /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field k is f[k-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the command name", len(f))
	}
	var v [4]int64
	for k := range v {
		n, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil || n < 0 {
			return procStat{}, fmt.Errorf("proc stat: field %d: %q", 14+k, f[11+k])
		}
		v[k] = n
	}
	return procStat{utime: v[0], stime: v[1], cutime: v[2], cstime: v[3]}, nil
}

// cpu is the process's CPU with that of its reaped children.
func (s procStat) cpu() time.Duration {
	// USER_HZ is 100 on every Linux architecture the bench runs on.
	return time.Duration(s.utime+s.stime+s.cutime+s.cstime) * 10 * time.Millisecond
}

// parseProcStatus returns VmHWM and VmRSS in bytes from the text of
// /proc/PID/status (0 for a field that is missing, as for kernel threads).
func parseProcStatus(b []byte) (hwm, rss int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil || kb < 0 {
			continue
		}
		if k == "VmHWM" {
			hwm = kb << 10
		} else {
			rss = kb << 10
		}
	}
	return hwm, rss
}

// usage sums over the processes of a namespace.
type usage struct {
	cpu      time.Duration
	hwm, rss int64
	procs    int
}

// nsInode is the inode of a named network namespace; processes in it have
// /proc/PID/ns/net -> net:[inode].
func nsInode(ns string) (uint64, error) {
	st, err := os.Stat(filepath.Join("/run/netns", ns))
	if err != nil {
		return 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("no inode for " + ns)
	}
	return sys.Ino, nil
}

// nsUsage sums CPU, VmHWM and VmRSS over every process in the network
// namespace with inode ino. A process that exits between the listing and
// the reads is skipped.
func nsUsage(ino uint64) usage {
	var u usage
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return u
	}
	want := fmt.Sprintf("net:[%d]", ino)
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		p := filepath.Join("/proc", e.Name())
		if l, err := os.Readlink(filepath.Join(p, "ns/net")); err != nil || l != want {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		st, err := parseProcStat(b)
		if err != nil {
			continue
		}
		b, err = os.ReadFile(filepath.Join(p, "status"))
		if err != nil {
			continue
		}
		hwm, rss := parseProcStatus(b)
		u.cpu += st.cpu()
		u.hwm += hwm
		u.rss += rss
		u.procs++
	}
	return u
}

// listensOn reports whether the text of /proc/net/udp or /proc/net/tcp
// shows a socket bound to port (a TCP one in state LISTEN when tcp).
func listensOn(procNet []byte, port int, tcp bool) bool {
	sc := bufio.NewScanner(bytes.NewReader(procNet))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		if !tcp || f[3] == "0A" { // TCP_LISTEN
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- classic

// classicServer is the server address every classic configuration names.
const classicServer = benchSrvIP

// writeClassicTree lays out what the tutorials have an administrator put
// on the boot server: the TFTP root (shim and GRUB at the top, GRUB's menu
// in grub/, Debian's netboot kernel and initrd in debian-installer/), a web
// root with one preseed per host, and the daemons' configurations.
func writeClassicTree(dir string, macs []string) error {
	tftp, www := filepath.Join(dir, "tftp"), filepath.Join(dir, "www")
	set, err := bootmenu.FindLoaders(bootmenu.LoaderSource{}, "/")
	if err != nil {
		return fmt.Errorf("boot loaders: %w (apt-get install %s)", err, bootmenu.HostLoaderPackages)
	}
	copies := []struct {
		fsys     fs.FS
		src, dst string
	}{
		{set, bootmenu.LoaderShim, filepath.Join(tftp, bootmenu.LoaderShim)},
		{set, bootmenu.LoaderGRUB, filepath.Join(tftp, bootmenu.LoaderGRUB)},
	}
	for _, rel := range []string{"debian-installer/amd64/linux", "debian-installer/amd64/initrd.gz"} {
		copies = append(copies, struct {
			fsys     fs.FS
			src, dst string
		}{os.DirFS(fleetDebianNetboot), rel, filepath.Join(tftp, rel)})
	}
	for _, c := range copies {
		if err := copyFSFile(c.fsys, c.src, c.dst); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		filepath.Join(tftp, "grub/grub.cfg"): classicGRUBConfig(classicServer),
		filepath.Join(dir, "dhcpd.conf"):     classicDHCPDConfig(classicServer, fleetPool),
		filepath.Join(dir, "dhcpd.leases"):   nil,
		filepath.Join(dir, "nginx.conf"):     classicNginxConfig(dir, classicServer, 80),
	}
	for i, mac := range macs {
		spec, err := answerfile.ParseSpec(classicSpec(fmt.Sprintf("rack-%03d", i+1)))
		if err != nil {
			return fmt.Errorf("answer file spec: %w", err)
		}
		out, err := answerfile.Render("debian-12", answerfile.KindPreseed, spec)
		if err != nil {
			return fmt.Errorf("answer file for %s: %w", mac, err)
		}
		files[filepath.Join(www, "hosts", mac, "preseed.cfg")] = out
	}
	for name, b := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
	}
	for _, d := range []string{"nginx-temp", "nginx-logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// tftpd-hpa drops to nobody inside its chroot, and nginx's workers
	// read the web root: both need the tree readable.
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o755)
	})
}

func copyFSFile(fsys fs.FS, src, dst string) error {
	in, err := fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// classicSpec is fleet's inventory defaults for one host (see
// fleetInventory), as YAML for answerfile.ParseSpec.
func classicSpec(hostname string) []byte {
	return fmt.Appendf(nil, "hostname: %s\nmirror: http://deb.debian.org/debian\ndisk: {wipe: true}\nroot: {password: {hash: '%s'}}\n", hostname, fleetRootHash)
}

// classicGRUBConfig is the tutorials' grub.cfg for Debian's netboot tree:
// kernel and initrd by bare path (so from the TFTP server GRUB came from),
// each host's preseed by GRUB's ${net_default_mac}.
func classicGRUBConfig(server string) []byte {
	return fmt.Appendf(nil, `set default=install
set timeout=3

menuentry 'Install Debian GNU/Linux 12' --id install {
	linux /debian-installer/amd64/linux auto=true priority=critical url=http://%s/hosts/${net_default_mac}/preseed.cfg ---
	initrd /debian-installer/amd64/initrd.gz
}
`, server)
}

// classicDHCPDConfig is the tutorials' dhcpd.conf: one subnet, the pool,
// next-server and a boot file chosen by the client architecture (option
// 93: 7 and 9 are x64 UEFI). ping-check stays at dhcpd's default, as a
// tutorial leaves it (fleet also probes an address before offering it).
func classicDHCPDConfig(server, pool string) []byte {
	first, last, _ := strings.Cut(pool, "-")
	return fmt.Appendf(nil, `authoritative;
default-lease-time 3600;
max-lease-time 3600;
option arch code 93 = unsigned integer 16;

subnet 10.232.0.0 netmask 255.255.0.0 {
	range %s %s;
	option domain-name-servers %s;
	next-server %s;
	if option arch = 00:07 or option arch = 00:09 {
		filename "%s";
	} else {
		filename "pxelinux.0";
	}
}
`, first, last, server, server, bootmenu.LoaderShim)
}

// classicNginxConfig serves dir/www on server:port, in the foreground,
// with sendfile, every path of nginx's own below dir.
func classicNginxConfig(dir, server string, port int) []byte {
	return fmt.Appendf(nil, `daemon off;
master_process on;
user root;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	default_type application/octet-stream;
	client_body_temp_path %[1]s/nginx-temp/body;
	proxy_temp_path %[1]s/nginx-temp/proxy;
	fastcgi_temp_path %[1]s/nginx-temp/fastcgi;
	uwsgi_temp_path %[1]s/nginx-temp/uwsgi;
	scgi_temp_path %[1]s/nginx-temp/scgi;
	server {
		listen %[2]s:%[3]d;
		root %[1]s/www;
	}
}
`, dir, server, port)
}

// classicArgv is each daemon's command line; dhcp is "dhcpd" or
// "dnsmasq".
func classicArgv(dir, iface, dhcp string) [][]string {
	d := []string{"dhcpd", "-4", "-f", "-q", "-cf", filepath.Join(dir, "dhcpd.conf"), "-lf", filepath.Join(dir, "dhcpd.leases"),
		"-pf", filepath.Join(dir, "dhcpd.pid"), iface}
	if dhcp == "dnsmasq" {
		first, last, _ := strings.Cut(fleetPool, "-")
		d = []string{"dnsmasq", "-k", "-p0", "-i", iface, "--bind-interfaces",
			"--dhcp-range=" + first + "," + last + ",255.255.0.0,1h", "--dhcp-authoritative",
			"--dhcp-match=set:efi64,option:client-arch,7", "--dhcp-match=set:efi64,option:client-arch,9",
			"--dhcp-boot=tag:efi64," + bootmenu.LoaderShim + ",," + classicServer, "--dhcp-boot=tag:!efi64,pxelinux.0,," + classicServer,
			"--dhcp-leasefile=" + filepath.Join(dir, "dnsmasq.leases"), "--pid-file=" + filepath.Join(dir, "dnsmasq.pid"),
			"--user=root", "--log-facility=-", "--quiet-dhcp"}
	}
	return [][]string{
		d,
		{"in.tftpd", "-L", "-a", classicServer + ":69", "-s", filepath.Join(dir, "tftp"), "-P", filepath.Join(dir, "tftpd.pid")},
		{"nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr"},
	}
}

// startClassic starts dhcpd (or dnsmasq), tftpd-hpa and nginx in n's server
// namespace and waits until ports 67 and 69 (UDP) and 80 (TCP) are bound
// there.
func startClassic(ctx context.Context, n *benchNet, dir, self, cg, dhcp string) (func(), error) {
	type proc struct {
		cmd    *exec.Cmd
		exited chan struct{}
		log    *fleetLog
	}
	var procs []*proc
	stop := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			terminate(procs[i].cmd.Process, procs[i].exited, 5*time.Second)
		}
		// A fresh lease file for the next measurement.
		_ = os.WriteFile(filepath.Join(dir, "dhcpd.leases"), nil, 0o644)
		_ = os.Remove(filepath.Join(dir, "dnsmasq.leases"))
	}
	logs := func() string {
		var b strings.Builder
		for _, p := range procs {
			fmt.Fprintf(&b, "%s:\n%s\n", daemonName(p.cmd.Args), p.log.tail())
		}
		return b.String()
	}
	for _, argv := range classicArgv(dir, n.srvIf, dhcp) {
		full := append([]string{"ip", "netns", "exec", n.srvNS}, argv...)
		if cg != "" {
			// This binary joins the cgroup, then becomes ip, which
			// becomes the daemon.
			full = append([]string{self}, full...)
		}
		cmd := exec.CommandContext(ctx, full[0], full[1:]...)
		if cg != "" {
			cmd.Env = append(os.Environ(), cgExecEnv+"="+cg)
		}
		lw := &fleetLog{ready: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = lw, lw
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", argv[0], err)
		}
		p := &proc{cmd: cmd, exited: make(chan struct{}), log: lw}
		go func() { _ = cmd.Wait(); close(p.exited) }()
		procs = append(procs, p)
	}
	want := []struct {
		file string
		port int
		tcp  bool
	}{{"udp", 67, false}, {"udp", 69, false}, {"tcp", 80, true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, p := range procs {
			select {
			case <-p.exited:
				stop()
				return nil, fmt.Errorf("%s exited at start (%v):\n%s", daemonName(p.cmd.Args), p.cmd.ProcessState, logs())
			default:
			}
		}
		ready := true
		for _, w := range want {
			// Any process of the namespace sees its sockets.
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", procs[0].cmd.Process.Pid, w.file))
			if err != nil || !listensOn(b, w.port, w.tcp) {
				ready = false
			}
		}
		if ready {
			return stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("classic stack not serving after 30 s:\n%s", logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- table

// percentile is the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method; 0 for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// rackTable prints one client count: each stack's medians over its runs.
func rackTable(w io.Writer, clients int, stacks []rackStack, ms [][]rackMeasure) {
	fmt.Fprintf(w, "-- rack: %d client(s) at once; median of %d run(s)\n", clients, len(ms[0]))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stack\ttotal s\tper-client median s\tp95 s\tfailed\tstack CPU s\tΣ VmHWM MiB\tpeak Σ RSS MiB\tmax procs\tclients' CPU s\tMiB rx/client\tKiB tx/client\t")
	for k, st := range stacks {
		var total, med, p95, cpu, hwm, rss, procs, ccpu, rx, tx []float64
		failed := 0
		for _, m := range ms[k] {
			pc := make([]float64, len(m.perClient))
			for i, d := range m.perClient {
				pc[i] = d.Seconds()
			}
			total = append(total, m.total.Seconds())
			med = append(med, median(pc))
			p95 = append(p95, percentile(pc, 95))
			cpu = append(cpu, m.stackCPU.Seconds())
			hwm = append(hwm, float64(m.stackHWM)/(1<<20))
			rss = append(rss, float64(m.peakRSS)/(1<<20))
			procs = append(procs, float64(m.procs))
			ccpu = append(ccpu, m.clientCPU.Seconds())
			rx = append(rx, float64(m.rx)/float64(m.clients)/(1<<20))
			tx = append(tx, float64(m.tx)/float64(m.clients)/(1<<10))
			failed += m.failed
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%d\t%.2f\t%.1f\t%.1f\t%.0f\t%.2f\t%.1f\t%.0f\t\n", st.name,
			median(total), median(med), median(p95), failed, median(cpu), median(hwm), median(rss), median(procs), median(ccpu), median(rx), median(tx))
	}
	tw.Flush()
	fmt.Fprintln(w, "   per-client phase medians, s:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "stack\t")
	for _, p := range phaseNames {
		fmt.Fprintf(tw, "%s\t", p)
	}
	fmt.Fprintln(tw)
	for k, st := range stacks {
		fmt.Fprintf(tw, "%s\t", st.name)
		for i := range phaseNames {
			var xs []float64
			for _, m := range ms[k] {
				ps := make([]float64, len(m.phases[i]))
				for j, d := range m.phases[i] {
					ps[j] = d.Seconds()
				}
				xs = append(xs, median(ps))
			}
			fmt.Fprintf(tw, "%.3f\t", median(xs))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for k, st := range stacks {
		for i, m := range ms[k] {
			for _, e := range m.errs {
				fmt.Fprintf(w, "   %s run %d: failed: %s\n", st.name, i+1, e)
			}
		}
	}
}

// daemonName is the daemon an "[self] ip netns exec NS daemon ..."
// command line starts.
func daemonName(args []string) string {
	for i, a := range args {
		if a == "exec" && i+2 < len(args) {
			return args[i+2]
		}
	}
	return strings.Join(args, " ")
}
