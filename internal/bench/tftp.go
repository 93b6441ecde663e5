package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pxekit/pxekit/tftpsrv"
)

// The pxekit TFTP server runs in its own process, like its peers, so that
// its memory and CPU are measured alone: the bench binary re-executes itself
// with this variable set to "addr|dir".
const tftpServeEnv = "PXEKIT_BENCH_TFTPSRV"

func init() {
	v := os.Getenv(tftpServeEnv)
	if v == "" {
		return
	}
	addr, dir, _ := strings.Cut(v, "|")
	srv := &tftpsrv.Server{
		Handler:               tftpsrv.FileServer(os.DirFS(dir)),
		Logger:                slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MaxBlockSize:          65464, // loopback: let the MTU cap decide, as the peers do
		MaxTransfers:          1024,
		MaxTransfersPerClient: 1024, // every bench client is 127.0.0.1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.ListenAndServe(addr)
	stop()
	if err != nil && !errors.Is(err, tftpsrv.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "tftpsrv:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// tftpPeer is one server under test.
type tftpPeer struct {
	name    string
	host    string // address served on and downloaded from
	port    int
	command func(dir string) []string
	window  bool   // negotiates RFC 7440 windowsize
	srvNS   string // namespace the server runs in; "" for the host's
	cliNS   string // namespace clients run in
	cmd     *exec.Cmd
}

// tftpPeers lists the servers, listening on host. retry is each server's
// retransmission timeout in seconds where it can be set (atftpd defaults to
// 5, the others use 1); 0 leaves every default.
func tftpPeers(self, atftpd, host string, retry int) []*tftpPeer {
	var atftpdRetry []string
	if retry > 0 {
		atftpdRetry = []string{"--retry-timeout", strconv.Itoa(retry)}
	}
	return []*tftpPeer{
		{name: "pxekit", host: host, port: 16969, window: true, command: func(dir string) []string {
			return []string{self}
		}},
		{name: "tftpd-hpa", host: host, port: 16970, command: func(dir string) []string {
			return []string{"in.tftpd", "--foreground", "--address", fmt.Sprintf("%s:%d", host, 16970), "--secure", "--user", "tftp", dir}
		}},
		{name: "atftpd", host: host, port: 16971, window: true, command: func(dir string) []string {
			return append(append([]string{atftpd, "--daemon", "--no-fork", "--port", "16971", "--bind-address", host,
				"--maxthread", "400", "--logfile", "/dev/null", "--user", "nobody.nogroup"}, atftpdRetry...), dir)
		}},
		// dnsmasq has no option for its TFTP port: it always listens on 69.
		{name: "dnsmasq", host: host, port: 69, window: true, command: func(dir string) []string {
			return []string{"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--bind-interfaces",
				"--listen-address=" + host, "--enable-tftp", "--tftp-root=" + dir, "--tftp-max=400", "--user=nobody",
				"--pid-file=", "--log-facility=/dev/null"}
		}},
	}
}

func (p *tftpPeer) addr() string { return fmt.Sprintf("%s:%d", p.host, p.port) }

func (p *tftpPeer) start(ctx context.Context, dir string) error {
	if p.srvNS == "" {
		if c, err := net.ListenPacket("udp4", p.addr()); err != nil {
			return fmt.Errorf("port %d is taken: %w", p.port, err)
		} else {
			c.Close()
		}
	}
	p.cmd = nsCommand(ctx, p.srvNS, p.command(dir)...)
	p.cmd.Stderr = os.Stderr
	if p.name == "pxekit" {
		p.cmd.Env = append(os.Environ(), tftpServeEnv+"="+p.addr()+"|"+dir)
	}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	// Ready when a probe download of the small file works.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if nsCommand(ctx, p.cliNS, "curl", "-sf", "--max-time", "1", "-o", "/dev/null", "tftp://"+p.addr()+"/ready").Run() == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return fmt.Errorf("%s did not start serving on %s", p.name, p.addr())
}

func (p *tftpPeer) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	stopProcess(p.cmd, 3*time.Second)
	p.cmd = nil
}

// treeRSS is the resident memory of pid and its descendants (tftpd-hpa and
// atftpd fork or thread per transfer), in bytes.
func treeRSS(pid int) int64 {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var total int64
	var walk func(int)
	walk = func(p int) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					total += kb * 1024
				}
			}
			f.Close()
		}
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return total
}

func writeRandom(path string, size int64) ([32]byte, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func fileSum(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// download fetches name from p with curl (blksize > 0) or atftp (window > 0)
// into out and returns the elapsed time.
// downloadChecked downloads name to dst, compares its SHA-256 with want
// and removes dst again.
func (p *tftpPeer) downloadChecked(ctx context.Context, name, dst string, want [32]byte, blksize, window int) (time.Duration, error) {
	d, err := p.download(ctx, name, dst, blksize, window)
	if err == nil {
		var sum [32]byte
		if sum, err = fileSum(dst); err == nil && sum != want {
			err = errors.New("checksum mismatch")
		}
	}
	os.Remove(dst)
	return d, err
}

func (p *tftpPeer) download(ctx context.Context, name, out string, blksize, window int) (time.Duration, error) {
	var cmd *exec.Cmd
	if window > 0 {
		cmd = nsCommand(ctx, p.cliNS, "atftp", "--option", fmt.Sprintf("blksize %d", blksize),
			"--option", fmt.Sprintf("windowsize %d", window), "-g", "-r", name, "-l", out, p.host, strconv.Itoa(p.port))
	} else {
		cmd = nsCommand(ctx, p.cliNS, "curl", "-sS", "--max-time", "600", "--tftp-blksize", strconv.Itoa(blksize),
			"-o", out, "tftp://"+p.addr()+"/"+name)
	}
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(b)))
	}
	return time.Since(start), nil
}

// tftpCasesEnv, when set, limits the tftp suite to some of its cases, a
// comma-separated list of 512, 1468, 8192 (single downloads at that
// blksize), window (windowsize 16) and clients (200 at once); for quicker
// measurements while working on one of them.
const tftpCasesEnv = "PXEKIT_BENCH_TFTP_CASES"

func tftpCases() map[string]bool {
	v := os.Getenv(tftpCasesEnv)
	if v == "" {
		v = "512,1468,8192,window,clients"
	}
	m := map[string]bool{}
	for _, c := range strings.Split(v, ",") {
		m[strings.TrimSpace(c)] = true
	}
	return m
}

// tftpSetup installs and stops the peers and makes the served tree (dir)
// and the clients' download directory (out); cleanup removes both.
func tftpSetup(ctx context.Context, e *env, name string) (self, dir, out string, cleanup func(), err error) {
	if err := e.install(ctx, "tftpd-hpa", "dnsmasq-base", "curl", "atftp"); err != nil {
		return "", "", "", nil, err
	}
	for _, svc := range []string{"tftpd-hpa", "atftpd"} {
		stopService(ctx, svc)
	}
	if self, err = os.Executable(); err != nil {
		return "", "", "", nil, err
	}
	if dir, err = os.MkdirTemp("", name); err != nil {
		return "", "", "", nil, err
	}
	if out, err = os.MkdirTemp("", name+"-out"); err != nil {
		os.RemoveAll(dir)
		return "", "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir); os.RemoveAll(out) }
	// The servers drop privileges: the tree must be world-readable.
	if err := os.Chmod(dir, 0o755); err != nil {
		cleanup()
		return "", "", "", nil, err
	}
	return self, dir, out, cleanup, nil
}

func runTFTP(ctx context.Context, e *env) error {
	self, dir, out, cleanup, err := tftpSetup(ctx, e, "tftpbench")
	if err != nil {
		return err
	}
	defer cleanup()
	const big, medium = 64 << 20, 32 << 20
	bigSum, err := writeRandom(filepath.Join(dir, "big.img"), big)
	if err != nil {
		return err
	}
	mediumSum, err := writeRandom(filepath.Join(dir, "medium.img"), medium)
	if err != nil {
		return err
	}
	if _, err := writeRandom(filepath.Join(dir, "ready"), 10); err != nil {
		return err
	}

	atftpd, err := atftpdBinary(ctx, out)
	if err != nil {
		fmt.Fprintf(e.out, "atftpd unavailable: %v\n", err)
	}
	peers := tftpPeers(self, atftpd, "127.0.0.1", 0)
	var running []*tftpPeer
	for _, p := range peers {
		if err := p.start(ctx, dir); err != nil {
			fmt.Fprintf(e.out, "skipping %s: %v\n", p.name, err)
			continue
		}
		running = append(running, p)
	}
	defer func() {
		for _, p := range running {
			p.stop()
		}
	}()

	mbps := func(d time.Duration, size int64) float64 { return float64(size) / 1e6 / d.Seconds() }
	single := func(title string, blksize, window int) {
		var rows []row
		for _, p := range running {
			if window > 0 && !p.window {
				continue
			}
			var xs []float64
			note := ""
			for i := 0; i < e.runs; i++ {
				dst := filepath.Join(out, p.name+".img")
				d, err := p.downloadChecked(ctx, "big.img", dst, bigSum, blksize, window)
				if err != nil {
					note = "failed: " + err.Error()
					continue
				}
				xs = append(xs, mbps(d, big))
			}
			rows = append(rows, row{subject: p.name, value: median(xs), unit: "MB/s", note: note})
		}
		e.table(title, "pxekit", true, rows)
	}
	cases := tftpCases()
	for _, bs := range []int{512, 1468, 8192} {
		if cases[strconv.Itoa(bs)] {
			single(fmt.Sprintf("64 MiB, blksize %d (curl)", bs), bs, 0)
		}
	}
	if cases["window"] {
		single("64 MiB, blksize 1468, windowsize 16 (atftp)", 1468, 16)
	}
	if !cases["clients"] {
		return nil
	}

	// 200 clients at once, 32 MiB each, blksize 1468.
	const clients = 200
	var agg, slow, fails, rss []row
	for _, p := range running {
		var mu sync.Mutex
		var durs []float64
		failed := 0
		var peak int64
		stopSampling := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-t.C:
					peak = max(peak, treeRSS(p.cmd.Process.Pid))
				}
			}
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dst := filepath.Join(out, fmt.Sprintf("%s-%d", p.name, i))
				d, err := p.downloadChecked(ctx, "medium.img", dst, mediumSum, 1468, 0)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				durs = append(durs, d.Seconds())
			}()
		}
		wg.Wait()
		wall := time.Since(start)
		close(stopSampling)
		<-sampled
		sort.Float64s(durs)
		slowest := 0.0
		if len(durs) > 0 {
			slowest = durs[len(durs)-1]
		}
		agg = append(agg, row{subject: p.name, value: float64(len(durs)) * medium / 1e6 / wall.Seconds(), unit: "MB/s"})
		slow = append(slow, row{subject: p.name, value: slowest, unit: "s"})
		fails = append(fails, row{subject: p.name, value: float64(failed), unit: "failed"})
		rss = append(rss, row{subject: p.name, value: float64(peak) / 1e6, unit: "MB", note: "peak RSS of the server and its children"})
	}
	title := fmt.Sprintf("%d clients × 32 MiB, blksize 1468 (curl)", clients)
	e.table(title+": aggregate", "pxekit", true, agg)
	e.table(title+": slowest client", "pxekit", false, slow)
	e.table(title+": failures", "pxekit", false, fails)
	e.table(title+": server memory", "pxekit", false, rss)
	return nil
}

// atftpdBinary finds atftpd. Its Debian package conflicts with tftpd-hpa's,
// so when it is not installed the package is downloaded and unpacked into
// scratch instead (its libraries, libwrap0 and libpcre2, come with
// tftpd-hpa and the base system).
func atftpdBinary(ctx context.Context, scratch string) (string, error) {
	if p, err := exec.LookPath("atftpd"); err == nil {
		return p, nil
	}
	dir := filepath.Join(scratch, "atftpd-pkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	get := exec.CommandContext(ctx, "apt-get", "download", "atftpd")
	get.Dir = dir
	if b, err := get.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download atftpd: %v: %s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "atftpd_*.deb"))
	if len(debs) == 0 {
		return "", errors.New("apt-get download atftpd left no .deb")
	}
	if b, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], filepath.Join(dir, "root")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x: %v: %s", err, b)
	}
	return filepath.Join(dir, "root", "usr", "sbin", "atftpd"), nil
}
