package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/simclient"
	"golang.org/x/sys/unix"
)

// The fleet suite is a simulated rack: the built examples/fleet binary
// serves full DHCP, TFTP and HTTP in one network namespace, and a second
// process of this binary, in another namespace on the far end of a veth
// pair, plays many UEFI machines booting at once the way OVMF, shim, GRUB
// and the Debian installer do, each from the address it leased. Running the
// clients in their own process keeps their sockets in their namespace
// without switching threads between namespaces, and keeps their CPU apart
// from the server's in /proc.
const (
	// fleetClientEnv carries a fleetJob (JSON): the process is then the
	// simulated clients, run inside the client namespace.
	fleetClientEnv = "PXEKIT_BENCH_FLEETCLI"
	// fleetSynthEnv set to 1 serves a generated netboot tree even when
	// Debian's is installed (to check the fallback).
	fleetSynthEnv = "PXEKIT_BENCH_FLEET_SYNTH"
	// fleetClientsEnv overrides fleetHosts, for quick checks of the setup.
	fleetClientsEnv = "PXEKIT_BENCH_FLEET_CLIENTS"
	// fleetKernelTFTPEnv set to 1 loads a kernel or initrd the menu names
	// by bare path the way Debian's GRUB does (from $root, over its
	// lock-step TFTP) instead of over HTTP (the default, as in the target scenario).
	fleetKernelTFTPEnv = "PXEKIT_BENCH_FLEET_KERNEL_TFTP"

	fleetHosts         = 200
	fleetDebianNetboot = "/usr/lib/debian-installer/images/12/amd64/text"
	fleetProfile       = "debian12"
	fleetPool          = "10.232.1.1-10.232.3.254"
	fleetHTTPPort      = 8080
	// fleetRootHash is a SHA-512 crypt of a throwaway password: Debian
	// answer files need one, and none is ever installed.
	fleetRootHash = "$6$pxekitbench$guya6IIQHTJTqF9NLqHnNeJRhY2cmaGrBEEwBI1pABKlNoOaFAH0LN9UX02mDnCh.y9MNyx4iXHg4nTCt4DN/1"
	// fleetTarget is the goal: all hosts at once within this many
	// times one host alone.
	fleetTarget = 3.0
)

// The phases of one simulated boot, in order.
const (
	phaseDHCP = iota
	phaseLoaders
	phaseMenu
	phaseKernel
	phaseAnswer
	fleetPhases
)

var phaseNames = [fleetPhases]string{"DHCP", "shim+GRUB (TFTP)", "grub.cfg (TFTP)", "kernel+initrd", "answer (HTTP)"}

// fleetSum identifies the content a client must receive.
type fleetSum struct {
	Size int64
	CRC  uint32 // CRC-32C: cheap enough that 200 clients checking 10 GB do not steal the server's CPU
}

// fleetJob is what the client process is asked to do.
type fleetJob struct {
	Iface  string              // client end of the veth pair
	Server string              // the fleet server's address
	MACs   []string            // one simulated machine each, all started at once
	Sums   map[string]fleetSum // by served name, for every loader, kernel and initrd
	Answer string              // the answer file's name below hosts/MAC/
	// KernelTFTP loads bare kernel and initrd paths over TFTP, as GRUB.
	KernelTFTP bool
	// SecureBoot has the machines boot with Secure Boot on: their GRUB
	// refuses to load modules (see grubInsmod).
	SecureBoot bool
	// HTTPPort is the server's HTTP port; 0 means fleetHTTPPort.
	HTTPPort int
	// AnswerPath is the path the menu must name for a host's answer file,
	// a path.Match pattern in which {mac} stands for the MAC as GRUB's
	// net_default_mac spells it; empty means fleet's
	// /hosts/MAC-WITH-DASHES/TOKEN/Answer.
	AnswerPath string
	// Timeout bounds the whole client process; 0 means ten minutes.
	Timeout time.Duration
}

// answerPattern is the path.Match pattern of mac's answer file.
func (j *fleetJob) answerPattern(mac net.HardwareAddr) string {
	if j.AnswerPath != "" {
		return strings.ReplaceAll(j.AnswerPath, "{mac}", mac.String())
	}
	// hosts/MAC/TOKEN/ANSWER: the token is the host's own secret.
	return "/hosts/" + strings.ReplaceAll(mac.String(), ":", "-") + "/*/" + j.Answer
}

// httpHost is the server's HTTP authority as a URL names it.
func (j *fleetJob) httpHost(server netip.Addr) string {
	switch j.HTTPPort {
	case 0:
		return netip.AddrPortFrom(server, fleetHTTPPort).String()
	case 80:
		return server.String()
	}
	return netip.AddrPortFrom(server, uint16(j.HTTPPort)).String()
}

// fleetClientResult is one simulated machine's boot, as the client process
// reports it.
type fleetClientResult struct {
	MAC, IP string
	Start   time.Duration // since the common start
	End     time.Duration // answer file received
	Phases  [fleetPhases]time.Duration
	// RxBytes and TxBytes are what the machine received and sent: UDP
	// payloads (DHCP, TFTP, retransmissions included) and TCP payloads
	// (HTTP headers and bodies); no IP, UDP or TCP headers.
	RxBytes, TxBytes int64
	Err              string
}

func init() {
	v := os.Getenv(fleetClientEnv)
	if v == "" {
		return
	}
	var job fleetJob
	if err := json.Unmarshal([]byte(v), &job); err != nil {
		fmt.Fprintln(os.Stderr, "fleet clients:", err)
		os.Exit(1)
	}
	ctx, stop := signalContext(job.Timeout)
	res, err := runFleetClients(ctx, job)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet clients:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// signalContext ends on SIGTERM or SIGINT, and after limit (ten minutes
// when 0) at most: a client process must never outlive a bench that lost
// track of it.
func signalContext(limit time.Duration) (context.Context, func()) {
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// fleetMeasure is one measurement: one fleet server, n clients at once.
type fleetMeasure struct {
	clients   int
	total     time.Duration   // common start to the last answer file
	perClient []time.Duration // successful clients only
	phases    [fleetPhases][]time.Duration
	failed    int
	errs      []string
	peakRSS   int64         // VmHWM of the fleet server, bytes
	cpu       time.Duration // fleet server CPU during the whole measurement
	clientCPU time.Duration // the simulated clients' CPU, on the same cores
	startup   time.Duration // fleet start until it serves DHCP
	rx, tx    int64         // bytes the clients received and sent (fleetClientResult)
}

func runFleet(ctx context.Context, e *env) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if err := e.install(ctx, "iproute2"); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	hosts := fleetHosts
	if v, err := strconv.Atoi(os.Getenv(fleetClientsEnv)); err == nil && v > 0 && v <= 500 {
		hosts = v
	}
	dir, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, "fleet")
	if err := buildFleetBinary(ctx, bin); err != nil {
		return err
	}
	netboot, what, err := fleetNetboot(filepath.Join(dir, "netboot"))
	if err != nil {
		return err
	}
	macs := make([]string, hosts)
	for i := range macs {
		macs[i] = net.HardwareAddr{0x02, 0xfe, 0, 0, byte((i + 1) >> 8), byte(i + 1)}.String()
	}
	inv := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(inv, fleetInventory(macs, netboot), 0o644); err != nil {
		return err
	}
	sums, err := fleetSums(netboot)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "netboot tree: %s\n", what)
	if os.Getenv(fleetKernelTFTPEnv) == "1" {
		fmt.Fprintln(e.out, "kernel and initrd: over TFTP as Debian's GRUB loads them (blksize 1024, lock-step)")
	}

	var solo, all []fleetMeasure
	var ratios []float64
	for run := 0; run < e.runs; run++ {
		for i, n := range []int{1, hosts} {
			// The tag names namespaces and veths: short, unique per measurement.
			m, err := measureFleet(ctx, fleetSetup{
				self: self, bin: bin, inventory: inv, dir: dir, tag: fmt.Sprintf("f%d%c", run, 'a'+i),
				job: fleetJob{MACs: macs[:n], Sums: sums, Answer: "preseed.cfg", KernelTFTP: os.Getenv(fleetKernelTFTPEnv) == "1"},
			})
			if err != nil {
				return fmt.Errorf("run %d, %d client(s): %w", run+1, n, err)
			}
			fmt.Fprintf(e.out, "run %d: %3d client(s): last answer file after %.2f s, %d failed\n", run+1, n, m.total.Seconds(), m.failed)
			if n == 1 {
				solo = append(solo, m)
			} else {
				all = append(all, m)
			}
		}
		if a, s := all[len(all)-1].total, solo[len(solo)-1].total; s > 0 {
			ratios = append(ratios, a.Seconds()/s.Seconds())
		}
	}
	fleetTable(e.out, hosts, solo, all, ratios)
	return nil
}

// buildFleetBinary builds examples/fleet of this module into bin.
func buildFleetBinary(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("run from inside the pxekit module (go env GOMOD is empty)")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/fleet")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./examples/fleet: %v\n%s", err, b)
	}
	return nil
}

// fleetNetboot returns Debian's installed netboot tree, or else a tree
// generated under scratch with files of the same names and sizes (what
// matters to the server is bytes, not what they boot).
func fleetNetboot(scratch string) (dir, what string, err error) {
	if os.Getenv(fleetSynthEnv) != "1" {
		if st, err := os.Stat(filepath.Join(fleetDebianNetboot, "debian-installer/amd64/initrd.gz")); err == nil && st.Mode().IsRegular() {
			return fleetDebianNetboot, fleetDebianNetboot + " (Debian's, real kernel and initrd)", nil
		}
	}
	files := map[string]int64{"debian-installer/amd64/linux": 8222656, "debian-installer/amd64/initrd.gz": 40810276}
	for name, size := range files {
		p := filepath.Join(scratch, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", "", err
		}
		if _, err := writeRandom(p, size); err != nil {
			return "", "", err
		}
	}
	why := "debian-installer-12-netboot-amd64 not installed"
	if os.Getenv(fleetSynthEnv) == "1" {
		why = fleetSynthEnv + "=1"
	}
	return scratch, "generated: random files the size of Debian 12's linux and initrd.gz (" + why + ")", nil
}

// fleetInventory is the rack: every MAC a host of one Debian 12 profile.
func fleetInventory(macs []string, netboot string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "unknown: ignore\ndefaults:\n  disk: {wipe: true}\n  root: {password: {hash: '%s'}}\n", fleetRootHash)
	fmt.Fprintf(&b, "profiles:\n  %s:\n    os: debian-12\n    netboot: %s\n    mirror: http://deb.debian.org/debian\n", fleetProfile, netboot)
	b.WriteString("hosts:\n")
	for i, mac := range macs {
		fmt.Fprintf(&b, "  - {mac: %q, hostname: rack-%03d, profile: %s}\n", mac, i+1, fleetProfile)
	}
	return b.Bytes()
}

// fleetSums reads what the server will send: the host's boot loaders, as
// fleet finds them (bootmenu.FindLoaders, as fleet does), and the profile's
// kernel and initrd.
func fleetSums(netboot string) (map[string]fleetSum, error) {
	sums := map[string]fleetSum{}
	add := func(name string, fsys fs.FS, rel string) error {
		f, err := fsys.Open(rel)
		if err != nil {
			return err
		}
		defer f.Close()
		h := crc32.New(castagnoli)
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		sums[name] = fleetSum{Size: n, CRC: h.Sum32()}
		return nil
	}
	set, err := bootmenu.FindLoaders(bootmenu.LoaderSource{}, "/")
	if err != nil {
		return nil, fmt.Errorf("boot loaders: %w (apt-get install %s)", err, bootmenu.HostLoaderPackages)
	}
	for _, l := range []string{bootmenu.LoaderShim, bootmenu.LoaderGRUB} {
		if err := add(l, set, l); err != nil {
			return nil, fmt.Errorf("boot loader %s: %w", l, err)
		}
	}
	for _, rel := range []string{"debian-installer/amd64/linux", "debian-installer/amd64/initrd.gz"} {
		if err := add("profiles/"+fleetProfile+"/boot/"+rel, os.DirFS(netboot), rel); err != nil {
			return nil, err
		}
	}
	return sums, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fleetSetup is what one measurement needs.
type fleetSetup struct {
	self, bin, inventory, dir, tag string
	job                            fleetJob
	// cgroup, when set, is a cgroup the server runs in (see cgExecEnv).
	cgroup string
}

// measureFleet starts a fresh fleet server in fresh namespaces, boots the
// job's clients at once against it, and tears everything down again.
func measureFleet(ctx context.Context, s fleetSetup) (fleetMeasure, error) {
	m := fleetMeasure{clients: len(s.job.MACs)}
	n, err := newBenchNet(ctx, s.tag)
	if err != nil {
		return m, err
	}
	defer n.close()
	srv, err := startFleetServer(ctx, s, n)
	if err != nil {
		return m, err
	}
	defer srv.stop()
	m.startup = srv.startup

	res, clientCPU, err := runClientProcess(ctx, s.self, n, s.job, 5*time.Minute)
	if err != nil {
		return m, fmt.Errorf("%w\nfleet log:\n%s", err, srv.log.tail())
	}
	m.peakRSS = procHWM(srv.pid)
	m.cpu = procCPU(srv.pid)
	m.clientCPU = clientCPU
	m.addResults(res)
	return m, nil
}

// fleetServer is a running examples/fleet in a bench namespace.
type fleetServer struct {
	pid     int
	log     *fleetLog
	startup time.Duration // start until it serves DHCP
	stop    func()
}

// startFleetServer starts s.bin in n's server namespace with full DHCP and
// returns once it serves DHCP (fleet starts DHCP last).
func startFleetServer(ctx context.Context, s fleetSetup, n *benchNet) (*fleetServer, error) {
	state := filepath.Join(s.dir, "state-"+s.tag+".json")
	logw := &fleetLog{ready: make(chan struct{})}
	started := time.Now()
	argv := []string{"ip", "netns", "exec", n.srvNS, s.bin,
		"-inventory", s.inventory, "-dhcp", "full", "-pool", fleetPool, "-iface", n.srvIf,
		"-tftp-addr", ":69", "-http-addr", fmt.Sprintf(":%d", fleetHTTPPort), "-progress", "log", "-state", state,
		// GRUB's http module is opt-in in fleet; the simulated GRUB loads
		// it unless the job boots with Secure Boot on.
		"-grub-http"}
	if s.cgroup != "" {
		// This binary joins the cgroup, then becomes ip, which becomes
		// fleet (the cgroup file system is out of sight inside ip netns
		// exec).
		argv = append([]string{s.self}, argv...)
	}
	srv := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if s.cgroup != "" {
		srv.Env = append(os.Environ(), cgExecEnv+"="+s.cgroup)
	}
	srv.Stderr = logw
	srv.WaitDelay = 5 * time.Second
	if err := srv.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); close(exited) }()
	stop := func() {
		terminate(srv.Process, exited, 5*time.Second)
		os.Remove(state)
	}
	select {
	case <-logw.ready:
	case <-exited:
		stop()
		return nil, fmt.Errorf("fleet exited before serving:\n%s", logw.tail())
	case <-time.After(60 * time.Second):
		stop()
		return nil, fmt.Errorf("fleet not serving DHCP after 60 s:\n%s", logw.tail())
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	// ip netns exec replaced itself with fleet: the pid is fleet's.
	return &fleetServer{pid: srv.Process.Pid, log: logw, startup: time.Since(started), stop: stop}, nil
}

// runClientProcess runs job's simulated machines in a process of this
// binary inside n's client namespace, at most limit long, and returns
// their results and the CPU time the process used.
func runClientProcess(ctx context.Context, self string, n *benchNet, job fleetJob, limit time.Duration) ([]fleetClientResult, time.Duration, error) {
	job.Iface, job.Server = n.cliIf, benchSrvIP
	job.Timeout = limit
	js, err := json.Marshal(job)
	if err != nil {
		return nil, 0, err
	}
	// A little longer than the process's own limit: it reports its
	// failed clients itself when it can.
	cctx, cancel := context.WithTimeout(ctx, limit+30*time.Second)
	defer cancel()
	cli := exec.CommandContext(cctx, "ip", "netns", "exec", n.cliNS, self)
	cli.Env = append(os.Environ(), fleetClientEnv+"="+string(js))
	cli.Stderr = os.Stderr
	cli.WaitDelay = 5 * time.Second
	out, err := cli.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("client process: %w", err)
	}
	// ip netns exec replaced itself with the client process.
	cpu := cli.ProcessState.UserTime() + cli.ProcessState.SystemTime()
	var res []fleetClientResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, 0, fmt.Errorf("client process output: %w", err)
	}
	return res, cpu, nil
}

// addResults folds the clients' results into m: the time to the last
// answer file, per-client times and phases of the successful clients, and
// the first few distinct errors.
func (m *fleetMeasure) addResults(res []fleetClientResult) {
	seen := map[string]bool{}
	for _, r := range res {
		m.rx += r.RxBytes
		m.tx += r.TxBytes
		if r.Err != "" {
			m.failed++
			if !seen[r.Err] && len(m.errs) < 5 {
				seen[r.Err] = true
				m.errs = append(m.errs, r.MAC+": "+r.Err)
			}
			continue
		}
		m.total = max(m.total, r.End)
		m.perClient = append(m.perClient, r.End-r.Start)
		for i, d := range r.Phases {
			m.phases[i] = append(m.phases[i], d)
		}
	}
	if m.failed > 0 {
		// A failed client never has its answer file: the run did not end.
		m.total = 0
		for _, r := range res {
			m.total = max(m.total, r.End)
		}
	}
}

// fleetLog takes the server's log: it signals when DHCP serves (fleet
// starts DHCP last, once TFTP and HTTP listen) and keeps the last lines for
// error messages.
type fleetLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	ready   chan struct{}
	once    sync.Once
}

func (l *fleetLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if strings.Contains(line, `msg="dhcp serving"`) {
			l.once.Do(func() { close(l.ready) })
		}
		if l.lines = append(l.lines, line); len(l.lines) > 40 {
			l.lines = l.lines[1:]
		}
	}
	return len(p), nil
}

func (l *fleetLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// procHWM returns a process's peak resident memory (VmHWM), in bytes, or 0.
func procHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// fleetTable prints the medians of the runs.
func fleetTable(w io.Writer, hosts int, solo, all []fleetMeasure, ratios []float64) {
	secs := func(ds []time.Duration) []float64 {
		xs := make([]float64, len(ds))
		for i, d := range ds {
			xs[i] = d.Seconds()
		}
		return xs
	}
	type agg struct {
		total, med, slow, rss, cpu, ccpu, startup float64
		failed                                    int
		phases                                    [fleetPhases]float64
	}
	summarize := func(ms []fleetMeasure) agg {
		var a agg
		var total, med, slow, rss, cpu, ccpu, startup []float64
		var phases [fleetPhases][]float64
		for _, m := range ms {
			total = append(total, m.total.Seconds())
			pc := secs(m.perClient)
			med = append(med, median(pc))
			if len(pc) > 0 {
				sort.Float64s(pc)
				slow = append(slow, pc[len(pc)-1])
			}
			rss = append(rss, float64(m.peakRSS)/(1<<20))
			cpu = append(cpu, m.cpu.Seconds())
			ccpu = append(ccpu, m.clientCPU.Seconds())
			startup = append(startup, m.startup.Seconds())
			a.failed += m.failed
			for i := range phases {
				phases[i] = append(phases[i], median(secs(m.phases[i])))
			}
		}
		a.total, a.med, a.slow, a.rss, a.cpu, a.ccpu, a.startup = median(total), median(med), median(slow), median(rss), median(cpu), median(ccpu), median(startup)
		for i := range phases {
			a.phases[i] = median(phases[i])
		}
		return a
	}
	s, a := summarize(solo), summarize(all)
	fmt.Fprintf(w, "-- fleet: %d simulated UEFI clients at once vs one alone (OVMF DORA, shim+GRUB over TFTP blksize 1468 windowsize 4, grub.cfg over TFTP, kernel+initrd+preseed over HTTP); median of %d run(s)\n", hosts, len(solo))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\ttotal s\tper-client median s\tslowest s\tfailed\tserver peak RSS MiB\tserver CPU s\tclients' CPU s\tserver start s\t")
	for _, r := range []struct {
		n int
		a agg
	}{{1, s}, {hosts, a}} {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.2f\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t\n", r.n, r.a.total, r.a.med, r.a.slow, r.a.failed, r.a.rss, r.a.cpu, r.a.ccpu, r.a.startup)
	}
	tw.Flush()
	ratio := median(ratios)
	verdict := "met"
	if ratio > fleetTarget || a.failed > 0 || s.failed > 0 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "ratio %d at once / one alone (total time): %.2fx; target <= %.0fx with no failed client: %s\n", hosts, ratio, fleetTarget, verdict)
	fmt.Fprintln(w, "-- per-client phase, median s")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "clients\t")
	for _, p := range phaseNames {
		fmt.Fprintf(tw, "%s\t", p)
	}
	fmt.Fprintln(tw)
	for _, r := range []struct {
		n int
		a agg
	}{{1, s}, {hosts, a}} {
		fmt.Fprintf(tw, "%d\t", r.n)
		for _, p := range r.a.phases {
			fmt.Fprintf(tw, "%.3f\t", p)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, ms := range [][]fleetMeasure{solo, all} {
		for i, m := range ms {
			for _, e := range m.errs {
				fmt.Fprintf(w, "run %d, %d client(s): failed: %s\n", i+1, m.clients, e)
			}
		}
	}
}

// ---------------------------------------------------------------- clients

// runFleetClients boots every MAC of the job at once and reports each.
func runFleetClients(ctx context.Context, job fleetJob) ([]fleetClientResult, error) {
	ifc, err := net.InterfaceByName(job.Iface)
	if err != nil {
		return nil, err
	}
	server, err := netip.ParseAddr(job.Server)
	if err != nil {
		return nil, err
	}
	dh, err := simclient.ListenDHCP(ctx, job.Iface)
	if err != nil {
		return nil, err
	}
	defer dh.Close()
	nl, err := newAddrAdder(ifc.Index)
	if err != nil {
		return nil, err
	}
	defer nl.close()
	arp, err := newARPSender(ifc)
	if err != nil {
		return nil, err
	}
	defer arp.close()

	res := make([]fleetClientResult, len(job.MACs))
	start := time.Now()
	var wg sync.WaitGroup
	for i, m := range job.MACs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &fleetClient{job: &job, server: server, dh: dh, nl: nl, arp: arp, xid: 0x46000000 | uint32(i)}
			r := &res[i]
			r.MAC = m
			r.Start = time.Since(start)
			if err := c.boot(ctx, m, r, start); err != nil {
				r.Err = err.Error()
			}
			r.End = time.Since(start)
			r.RxBytes, r.TxBytes = c.rx.Load(), c.tx.Load()
		}()
	}
	wg.Wait()
	return res, nil
}

// fleetClient is one simulated machine.
type fleetClient struct {
	// rx and tx count payload bytes (see fleetClientResult); HTTP
	// transport goroutines add to them too.
	rx, tx atomic.Int64
	job    *fleetJob
	server netip.Addr
	dh     *simclient.DHCP
	nl     *addrAdder
	arp    *arpSender
	xid    uint32
	ip     netip.Addr
	// tftpPort is the server's TFTP port; 0 means 69 (tests use another).
	tftpPort int
}

// boot runs the machine from power-on to its answer file, as OVMF, shim,
// GRUB and the installer would, recording each phase's time in r.
func (c *fleetClient) boot(ctx context.Context, macStr string, r *fleetClientResult, start time.Time) error {
	mac, err := net.ParseMAC(macStr)
	if err != nil {
		return err
	}
	t := time.Now()
	phase := func(p int) {
		now := time.Now()
		r.Phases[p] = now.Sub(t)
		t = now
	}

	// Firmware: DORA, then the address on the interface and an ARP for
	// the server from it, as the firmware's IP stack sends before its
	// first TFTP packet. The ARP matters: the server's conflict probe of
	// this address left an unresolved neighbour entry, which the ARP
	// resolves at once instead of at the kernel's next retry.
	bootFile, err := c.dora(ctx, mac)
	if err != nil {
		return err
	}
	r.IP = c.ip.String()
	if err := c.nl.add(c.ip); err != nil {
		return fmt.Errorf("add %s: %w", c.ip, err)
	}
	if err := c.arp.ask(c.ip, c.server); err != nil {
		return fmt.Errorf("arp: %w", err)
	}
	phase(phaseDHCP)

	// Firmware loads shim, shim loads GRUB from the same directory; both
	// through UEFI's PXE protocol, which first asks the size (an RRQ whose
	// OACK it answers with an ERROR), then reads.
	bootFile = strings.TrimPrefix(bootFile, "/")
	loaders := []string{bootFile}
	if path.Base(bootFile) == bootmenu.LoaderShim {
		loaders = append(loaders, path.Join(path.Dir(bootFile), bootmenu.LoaderGRUB))
	}
	for _, name := range loaders {
		want, ok := c.job.Sums[name]
		if !ok {
			return fmt.Errorf("DHCP named %q, which the bench has no copy of", name)
		}
		probe, err := c.tftp(ctx, name, simclient.TFTPOptions{BlockSize: 1468, WindowSize: 4, TSize: true, Probe: true}, nil)
		if err != nil {
			return fmt.Errorf("tftp size probe %s: %w", name, err)
		}
		if probe.TSize != want.Size {
			return fmt.Errorf("tftp %s: tsize %d, want %d", name, probe.TSize, want.Size)
		}
		got, err := c.tftp(ctx, name, simclient.TFTPOptions{BlockSize: 1468, WindowSize: 4}, nil)
		if err != nil {
			return fmt.Errorf("tftp %s: %w", name, err)
		}
		if got.Size != want.Size || got.CRC != want.CRC {
			return fmt.Errorf("tftp %s: %d bytes, checksum %08x; want %d bytes, %08x", name, got.Size, got.CRC, want.Size, want.CRC)
		}
	}
	phase(phaseLoaders)

	// GRUB (Debian's signed grubnetx64) reads $prefix/grub.cfg with its
	// own TFTP client: lock-step, blksize 1024, tsize.
	var menu bytes.Buffer
	if _, err := c.tftp(ctx, "/grub/grub.cfg", simclient.TFTPOptions{BlockSize: 1024, TSize: true}, &menu); err != nil {
		return fmt.Errorf("tftp grub.cfg: %w", err)
	}
	kernel, initrds, answer, err := parseGRUBMenu(menu.String())
	if err != nil {
		return fmt.Errorf("grub.cfg: %w", err)
	}
	// What the menu runs before its entries: pxekit's tests an (http,...)
	// device, which loads GRUB's http module, and names the HTTP root in
	// a variable (see grubTopLevel).
	vars, err := grubTopLevel(menu.String(), func(mod string) (bool, error) { return c.grubInsmod(ctx, mod) })
	if err != nil {
		return fmt.Errorf("grub.cfg: %w", err)
	}
	// GRUB expands its variables on the linux line; a classic menu names
	// each host's answer file by ${net_default_mac}.
	answer = simclient.ExpandGRUBVars(answer, map[string]string{"net_default_mac": mac.String()})
	wantAnswer := c.job.answerPattern(mac)
	au, err := url.Parse(answer)
	if err != nil {
		return fmt.Errorf("grub.cfg names answer file %q: %w", answer, err)
	}
	if ok, _ := path.Match(wantAnswer, au.Path); !ok {
		return fmt.Errorf("grub.cfg names answer file %q, not this host's %s", answer, wantAnswer)
	}
	phase(phaseMenu)

	// GRUB loads kernel and initrd, each on a connection of its own, with
	// its own small TCP window (see grubHTTPClient).
	hc := c.httpClient()
	defer hc.CloseIdleConnections()
	ghc := c.grubHTTPClient()
	defer ghc.CloseIdleConnections()
	for _, p := range append([]string{kernel}, initrds...) {
		p = simclient.ExpandGRUBVars(p, vars)
		u, name, err := c.menuURL(p)
		if err != nil {
			return err
		}
		want, ok := c.job.Sums[name]
		if !ok {
			return fmt.Errorf("grub.cfg names %q, which the bench has no copy of", p)
		}
		var size int64
		var crc uint32
		if c.job.KernelTFTP && strings.HasPrefix(p, "/") {
			var r simclient.TFTPResult
			r, err = c.tftp(ctx, p, simclient.TFTPOptions{BlockSize: 1024, TSize: true}, nil)
			size, crc = r.Size, r.CRC
		} else {
			size, crc, _, err = c.get(ctx, ghc, u)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if size != want.Size || crc != want.CRC {
			return fmt.Errorf("http %s: %d bytes, checksum %08x; want %d bytes, %08x", name, size, crc, want.Size, want.CRC)
		}
	}
	phase(phaseKernel)

	// The installer fetches its answer file.
	if au.Host != c.httpHost() {
		return fmt.Errorf("answer file on %s, not on the server (%s)", au.Host, c.httpHost())
	}
	size, _, body, err := c.get(ctx, hc, au.String())
	if err != nil {
		return fmt.Errorf("answer file: %w", err)
	}
	if size == 0 || !bytes.Contains(body, []byte("d-i ")) {
		return fmt.Errorf("answer file: %d bytes, not a preseed", size)
	}
	phase(phaseAnswer)
	return nil
}

// dora leases an address as a UEFI PXE client (simclient.DHCP.DORA) and
// returns the boot file the ACK names.
func (c *fleetClient) dora(ctx context.Context, mac net.HardwareAddr) (string, error) {
	l, err := c.dh.DORA(ctx, mac, c.xid, &c.rx, &c.tx)
	if err != nil {
		return "", err
	}
	c.ip = l.IP
	if l.NextServer.IsValid() && l.NextServer != c.server {
		return "", fmt.Errorf("ACK names TFTP server %s, not the fleet server", l.NextServer)
	}
	if l.BootFile == "" {
		return "", errors.New("ACK names no boot file")
	}
	return l.BootFile, nil
}

// menuURL resolves a file the GRUB menu names. A bare path is on $root,
// which for Debian's GRUB is the TFTP server it came from; the scenario has
// the bench fetch kernel and initrd over HTTP, so bare paths are taken
// from the same server's HTTP side.
func (c *fleetClient) menuURL(p string) (u, name string, err error) {
	host := c.httpHost()
	if rest, ok := strings.CutPrefix(p, "(http,"); ok {
		dev, file, ok := strings.Cut(rest, ")")
		if !ok || dev != host && dev != c.server.String() {
			return "", "", fmt.Errorf("grub.cfg names %q, not on the fleet server", p)
		}
		if dev == c.server.String() {
			host = c.server.String()
		}
		p = file
	} else if strings.HasPrefix(p, "(") {
		return "", "", fmt.Errorf("grub.cfg names %q: unsupported device", p)
	}
	name = strings.TrimPrefix(path.Clean("/"+p), "/")
	return "http://" + host + "/" + name, name, nil
}

// httpHost is the server's HTTP authority as URLs name it.
func (c *fleetClient) httpHost() string {
	if c.job == nil {
		return (&fleetJob{}).httpHost(c.server)
	}
	return c.job.httpHost(c.server)
}

// parseGRUBMenu returns the default entry's kernel, initrds and answer-file
// URL; a kernel line naming no answer file is an error here.
func parseGRUBMenu(cfg string) (kernel string, initrds []string, answer string, err error) {
	b, err := simclient.ParseGRUBMenu(cfg)
	if err != nil {
		return "", nil, "", err
	}
	if b.Answer == "" {
		return "", nil, "", errors.New("kernel line names no answer file")
	}
	return b.Kernel, b.Initrds, b.Answer, nil
}

// httpClient fetches from the leased address, one connection per file
// (GRUB and the installer's wget do not reuse connections), never through
// a proxy from the environment.
func (c *fleetClient) httpClient() *http.Client {
	return c.dialClient(2*time.Minute, nil)
}

// dialClient is an HTTP client from the leased address that counts its
// bytes, one connection per request; control (nil: none) sets each socket
// up before it connects.
func (c *fleetClient) dialClient(timeout time.Duration, control func(network, address string, rc syscall.RawConn) error) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: c.ip.AsSlice()}, Timeout: 10 * time.Second, Control: control}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, rx: &c.rx, tx: &c.tx}, nil
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true},
	}
}

// countingConn adds what passes through a connection to two counters.
type countingConn struct {
	net.Conn
	rx, tx *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rx.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.tx.Add(int64(n))
	return n, err
}

// get fetches u and returns its size and CRC-32C; the body itself only
// when small (answer files).
func (c *fleetClient) get(ctx context.Context, hc *http.Client, u string) (int64, uint32, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	h := crc32.New(castagnoli)
	var small bytes.Buffer
	w := io.Writer(h)
	if resp.ContentLength >= 0 && resp.ContentLength < 1<<20 {
		w = io.MultiWriter(h, &small)
	}
	n, err := io.CopyBuffer(w, resp.Body, make([]byte, 256<<10))
	if err != nil {
		return n, 0, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return n, h.Sum32(), small.Bytes(), nil
}

// addrAdder adds addresses to the client interface over rtnetlink:
// running ip(8) 200 times at once would cost more CPU than the server.
type addrAdder struct {
	mu    sync.Mutex
	fd    int
	index int
	seq   uint32
}

func newAddrAdder(index int) (*addrAdder, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Bounded waits for the kernel's answer.
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &addrAdder{fd: fd, index: index}, nil
}

func (a *addrAdder) close() { unix.Close(a.fd) }

// add puts ip/32 on the interface: the /32 adds no route, and the
// namespace's existing /16 already reaches the server. An address already
// there is fine.
func (a *addrAdder) add(ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	ne := binary.NativeEndian
	b := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfAddrmsg+2*(unix.SizeofRtAttr+4))
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.RTM_NEWADDR)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	ne.PutUint32(b[8:], a.seq)
	m := b[unix.NLMSG_HDRLEN:]
	m[0], m[1], m[2], m[3] = unix.AF_INET, 32, 0, unix.RT_SCOPE_UNIVERSE
	ne.PutUint32(m[4:], uint32(a.index))
	attr := m[unix.SizeofIfAddrmsg:]
	v4 := ip.As4()
	for _, typ := range []uint16{unix.IFA_LOCAL, unix.IFA_ADDRESS} {
		ne.PutUint16(attr[0:], unix.SizeofRtAttr+4)
		ne.PutUint16(attr[2:], typ)
		copy(attr[4:], v4[:])
		attr = attr[unix.SizeofRtAttr+4:]
	}
	if err := unix.Sendto(a.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for range 16 {
		n, _, err := unix.Recvfrom(a.fd, buf, 0)
		if err != nil {
			return err
		}
		for msg := buf[:n]; len(msg) >= unix.NLMSG_HDRLEN+4; {
			l := int(ne.Uint32(msg[0:]))
			if l < unix.NLMSG_HDRLEN || l > len(msg) {
				break
			}
			if ne.Uint16(msg[4:]) == unix.NLMSG_ERROR && ne.Uint32(msg[8:]) == a.seq {
				errno := -int32(ne.Uint32(msg[unix.NLMSG_HDRLEN:]))
				if errno == 0 || syscall.Errno(errno) == unix.EEXIST {
					return nil
				}
				return syscall.Errno(errno)
			}
			msg = msg[(l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1):]
		}
	}
	return errors.New("rtnetlink: no answer")
}

// arpSender sends ARP requests on the client interface, from any of the
// simulated machines' addresses.
type arpSender struct {
	fd  int
	ifc *net.Interface
}

func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

func newARPSender(ifc *net.Interface) (*arpSender, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, err
	}
	return &arpSender{fd: fd, ifc: ifc}, nil
}

func (s *arpSender) close() { unix.Close(s.fd) }

// ask broadcasts "who has target? tell from".
func (s *arpSender) ask(from, target netip.Addr) error {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1) // Ethernet
	binary.BigEndian.PutUint16(p[2:], unix.ETH_P_IP)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:14], s.ifc.HardwareAddr)
	f, t := from.As4(), target.As4()
	copy(p[14:18], f[:])
	copy(p[24:28], t[:])
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: s.ifc.Index, Halen: 6}
	copy(sa.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return unix.Sendto(s.fd, p, 0, sa)
}

// ---------------------------------------------------------------- TFTP

// tftp reads name from the server's TFTP port, from the leased address,
// with simclient's client (six timeouts of two seconds at most in a row),
// counting the bytes in the client's totals.
func (c *fleetClient) tftp(ctx context.Context, name string, o simclient.TFTPOptions, w io.Writer) (simclient.TFTPResult, error) {
	port := uint16(69)
	if c.tftpPort != 0 {
		port = uint16(c.tftpPort)
	}
	cl := &simclient.TFTP{Server: netip.AddrPortFrom(c.server, port), Local: c.ip, RX: &c.rx, TX: &c.tx}
	return cl.Read(ctx, name, o, w)
}
