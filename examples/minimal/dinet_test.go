package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/vmtest"
)

// The network testdata/dinet/spec.yaml gives the installer.
var (
	dinetAddr     = netip.MustParseAddr("10.77.0.50")
	dinetHostname = "e2e-host"
	dinetDomain   = "lab.test"
)

// dinetQuestion matches the title of a debconf question on the serial
// console in d-i's newt frontend: the priority in brackets ([!!] critical,
// [!] high, [.] medium, [?] low) before the step's name.
var dinetQuestion = regexp.MustCompile(`\[(!!|!|\.|\?)\] [A-Z][A-Za-z ]+`)

// linuxStarted is the kernel's first line on the serial console.
var linuxStarted = regexp.MustCompile(`Linux version [0-9]`)

// kernelPanic is the kernel's last word on the serial console.
var kernelPanic = regexp.MustCompile(`Kernel panic - not syncing: [^\r\n]*`)

// mirrorRequest is one request the test's package mirror received.
type mirrorRequest struct {
	remote netip.Addr
	method string
	path   string
	agent  string
	// serialLen is the size of the serial console log when the request
	// arrived: what the installer had shown before it.
	serialLen int64
}

// fakeMirror is the package mirror of the lab: it answers 404 to everything
// (the installer then stops at choose-mirror's error, which is past the
// point this test proves) and records every request.
type fakeMirror struct {
	serial string // the VM's serial log, once known
	mu     sync.Mutex
	reqs   []mirrorRequest
	first  chan struct{}
}

func (m *fakeMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := mirrorRequest{method: r.Method, path: r.URL.Path, agent: r.UserAgent()}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.remote = ap.Addr().Unmap()
	}
	m.mu.Lock()
	if m.serial != "" {
		if st, err := os.Stat(m.serial); err == nil {
			req.serialLen = st.Size()
		}
	}
	if len(m.reqs) < 1000 {
		m.reqs = append(m.reqs, req)
	}
	if len(m.reqs) == 1 {
		close(m.first)
	}
	m.mu.Unlock()
	http.NotFound(w, r)
}

func (m *fakeMirror) requests() []mirrorRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mirrorRequest(nil), m.reqs...)
}

// TestFirmwareDebianInstallerNetwork boots Debian 12's own installer on
// OVMF from examples/minimal, run as a user would with a -spec that gives a
// static address without a gateway (an isolated install network), hostname
// and domain, and proves from outside the VM that
// the installer used them: it reaches the package mirror (a handler in this
// test) from the spec's address, sends DNS queries only to the spec's name
// server, sent no DHCP request once its kernel started (a packet capture on
// the lab's tap) and showed no question on the serial console on the way.
// Then a shell on the VM's second console (VGA tty2, typed through QEMU)
// prints the hostname and domain d-i set.
func TestFirmwareDebianInstallerNetwork(t *testing.T) {
	requireNetbootVM(t, "minutes")
	// The whole test stays under 8 minutes on two busy cores: one boot to
	// the mirror takes about 4 minutes there.
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	bin := buildMinimal(t)

	lab := vmtest.NewLab(t, vmtest.LabConfig{})
	capture := lab.Capture(t)
	mirror := &fakeMirror{first: make(chan struct{})}
	ln, err := lab.Listen("tcp4", netip.AddrPortFrom(lab.ServerIP(), 0).String())
	require.NoError(t, err)
	msrv := &http.Server{Handler: mirror, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = msrv.Serve(ln) }()
	t.Cleanup(func() { _ = msrv.Close() })
	mirrorURL := "http://" + ln.Addr().String() + "/debian"

	const mac = "52:54:00:e2:e0:50"
	srv := lab.Start(t, "minimal", bin,
		"-iface", lab.Iface(), "-os", "debian-12", "-netboot", debianNetboot,
		"-console", "ttyS0,115200n8", "-dns", lab.ServerIP().String(),
		"-args", "no_timer_check", // see TestFirmwareE2E
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150",
		"-mirror", mirrorURL, "-spec", filepath.Join("testdata", "dinet", "spec.yaml"),
		"-demo-password", // a throw-away VM on the test's own network
	)
	if _, err := srv.WaitLog(ctx, regexp.MustCompile(`pxekit serving on`)); err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	// Under TCG on a loaded host the installer's kernel sometimes panics
	// in its timer check ("IO-APIC + timer doesn't work!") before any
	// network code runs: that says nothing about the answer file, so a
	// fresh VM gets one more try.
	var (
		vm       *vmtest.VM
		kernelAt time.Time
		tKernel  time.Duration
	)
	for attempt := 1; ; attempt++ {
		vm = lab.Boot(t, vmtest.VMConfig{
			Name: fmt.Sprintf("vm%d", attempt), Firmware: vmtest.UEFI, MAC: mac,
			Milestones: map[string]*regexp.Regexp{"d-i-question": dinetQuestion},
		})
		mirror.mu.Lock()
		mirror.serial = vm.SerialPath()
		mirror.mu.Unlock()
		vm.Watch("preseed", srv.LogPath(), answerFetched)

		// From the kernel's first line on, the VM runs the installer,
		// which must not ask for DHCP. (The server logs the initrd when
		// its download starts, and GRUB's last packets follow that.)
		if _, err := vm.WaitSerial(ctx, linuxStarted); err != nil {
			t.Fatalf("the installer's kernel never started: %v\n%s", err, vm.TimelineString())
		}
		kernelAt = time.Now()
		tKernel = vm.Mark("kernel-seen")

		pctx, stopPanic := context.WithCancel(ctx)
		panicked := make(chan string, 1)
		go func() {
			if line, err := vm.WaitSerial(pctx, kernelPanic); err == nil {
				panicked <- line
			}
		}()
		select {
		case <-mirror.first:
		case line := <-panicked:
			stopPanic()
			if attempt < 2 {
				t.Logf("attempt %d: the installer's kernel panicked under TCG (%s); booting a fresh VM", attempt, strings.TrimSpace(line))
				require.NoError(t, vm.Close())
				continue
			}
			t.Fatalf("the installer's kernel panicked twice under TCG: %s", strings.TrimSpace(line))
		case <-ctx.Done():
			stopPanic()
			shot := filepath.Join(lab.OutDir(), "no-mirror.png")
			_ = vm.Screenshot(shot)
			t.Fatalf("the installer never reached the package mirror %s: %v\nlast question on the console: %q\n%s",
				mirrorURL, ctx.Err(), lastQuestion(vm.SerialPath()), vm.TimelineString())
		}
		stopPanic()
		break
	}
	tMirror := vm.Mark("mirror")
	first := mirror.requests()[0]

	// 1. The static address: the mirror saw the spec's address.
	t.Logf("first mirror request: %s %s from %s (User-Agent %q), %.1f s after power-on",
		first.method, first.path, first.remote, first.agent, tMirror.Seconds())
	assert.Equal(t, dinetAddr, first.remote, "the installer reached the mirror from another address than the spec's")
	assert.True(t, strings.HasPrefix(first.path, "/debian/dists/"), "first mirror request %q is not a suite's Release", first.path)

	// 2. No question before the mirror: nothing on the console so far
	// carries a debconf priority marker.
	serial, err := os.ReadFile(vm.SerialPath())
	require.NoError(t, err)
	before := serial[:min(int64(len(serial)), first.serialLen)]
	if q := dinetQuestion.FindAll(before, -1); len(q) > 0 {
		t.Errorf("the installer showed %d question screen(s) before it reached the mirror, first %q", len(q), q[0])
	}

	// What the installer was told: the kernel prints its command line.
	if m := regexp.MustCompile(`Kernel command line: [^\r\n]*`).Find(serial); m != nil {
		line := string(m)
		t.Logf("serial console: %s", line)
		for _, want := range []string{"netcfg/get_hostname=" + dinetHostname, "netcfg/get_domain=" + dinetDomain, "netcfg/get_ipaddress=" + dinetAddr.String()} {
			assert.Contains(t, line, want, "kernel command line")
		}
	} else {
		t.Errorf("no kernel command line on the serial console")
	}

	// 3. No DHCP from the installer: every DHCP request of this MAC came
	// before the kernel started (firmware and boot loader only).
	pkts, lost := capture.Packets()
	require.Zero(t, lost, "the capture lost packets: it cannot prove that no DHCP request was sent")
	var dhcpBefore, dhcpAfter []string
	for _, p := range pkts {
		if p.SrcMAC.String() != mac || p.DHCPType() == 0 {
			continue
		}
		d := fmt.Sprintf("%s at %+.1fs from the kernel", dhcpTypeName(p.DHCPType()), p.At.Sub(kernelAt).Seconds())
		if p.At.After(kernelAt) {
			dhcpAfter = append(dhcpAfter, d)
		} else {
			dhcpBefore = append(dhcpBefore, d)
		}
	}
	t.Logf("DHCP from %s: before the kernel %v; after %v", mac, dhcpBefore, dhcpAfter)
	assert.NotEmpty(t, dhcpBefore, "the capture saw no DHCP from the firmware: it is not watching the VM's traffic")
	assert.Empty(t, dhcpAfter, "the installer asked for DHCP despite its static address")

	// Every IPv4 packet the VM sent after the kernel started came from
	// the spec's address, and every DNS query went to its name server.
	srcs := map[netip.Addr]int{}
	var dnsNames []string
	for _, p := range pkts {
		if p.SrcMAC.String() != mac || !p.At.After(kernelAt) {
			continue
		}
		srcs[p.Src]++
		if p.Proto == 17 && p.DstPort == 53 {
			dnsNames = append(dnsNames, fmt.Sprintf("%s->%s %s", p.Src, p.Dst, dnsQuestion(p.Payload)))
			assert.Equal(t, lab.ServerIP(), p.Dst, "DNS query to another server than the spec's")
		}
	}
	t.Logf("IPv4 sources of the VM after the kernel started: %v; DNS queries: %v", srcs, dnsNames)
	for a := range srcs {
		assert.Contains(t, []netip.Addr{dinetAddr, netip.IPv4Unspecified()}, a, "the VM sent from %s after the kernel started", a)
	}

	// 4. The hostname, from inside: a shell on tty2 (d-i's inittab starts
	// one there) writes what d-i set to the serial console.
	pr := probeHostname(ctx, t, vm)
	t.Logf("inside the installer: hostname %q, dnsdomainname %q, /etc/hostname %q, %s IPv4 default route(s)",
		pr.host, pr.domain, pr.etcHostname, pr.defaultRoutes)
	assert.Equal(t, dinetHostname, pr.host, "hostname in the installer")
	assert.Equal(t, dinetDomain, pr.domain, "DNS domain in the installer")
	assert.Equal(t, dinetHostname, pr.etcHostname, "/etc/hostname in the installer (copied to the target)")
	assert.Equal(t, "0", pr.defaultRoutes, "the spec names no gateway: no default route in the installer")

	var paths []string
	for _, r := range mirror.requests() {
		t.Logf("mirror: %s %s from %s", r.method, r.path, r.remote)
		paths = append(paths, r.path)
	}
	assert.Contains(t, paths, "/debian/dists/bookworm/Release", "choose-mirror never asked for the release it installs")
	// The mirror answers 404, so d-i's choose-mirror stops here with the
	// first question of the install, past what this test proves. Seeing
	// it shows that the question detector above reads the console right.
	last := lastQuestion(vm.SerialPath())
	t.Logf("then, on the console: %q", last)
	assert.Contains(t, last, "[!!] Choose a mirror", "the console shows no question even after the mirror failed: is the question pattern still right?")
	t.Logf("kernel seen at %.1f s, mirror reached at %.1f s after power-on\n%s",
		tKernel.Seconds(), tMirror.Seconds(), vm.TimelineString())
}

// probeResult is what the shell in the installer printed.
type probeResult struct {
	host, domain  string // hostname, dnsdomainname
	etcHostname   string // /etc/hostname, which base-installer copies to the target
	defaultRoutes string // number of IPv4 default routes
}

// probeHostname types into the shell d-i keeps on tty2 (its inittab starts
// one there, on the VGA console) a command that prints the hostname, DNS
// domain, /etc/hostname and the number of default routes to the serial
// console, and reads them back. The shell starts slowly
// under TCG and drops what is typed before its prompt, so it tries up to
// three times, each with its own marker. It returns the zero result (and
// logs why) when the shell never answers; the caller's assertions then fail.
func probeHostname(ctx context.Context, t *testing.T, vm *vmtest.VM) probeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := vm.SendKey(ctx, "ctrl", "alt", "f2"); err != nil {
		t.Logf("hostname probe: %v", err)
		return probeResult{}
	}
	shot := filepath.Join(filepath.Dir(vm.SerialPath()), "tty2.png")
	defer func() {
		if err := vm.Screenshot(shot); err == nil {
			t.Logf("tty2 screenshot: %s", shot)
		}
	}()
	for try := 1; try <= 3; try++ {
		// Enter activates the console (askfirst), or gives a fresh prompt.
		if err := vm.TypeText(ctx, "\n"); err != nil {
			t.Logf("hostname probe: %v", err)
			return probeResult{}
		}
		if !sleepCtx(ctx, 5*time.Second) {
			break
		}
		// The marker is split in the typed line so that its echo on tty2
		// (or anywhere) cannot match; only the command's output can.
		cmd := fmt.Sprintf(`echo "PXEKIT-""PROBE%d HOST=<$(hostname)> DOMAIN=<$(dnsdomainname)> ETC=<$(cat /etc/hostname)> ROUTE=<$(ip -4 route | grep -c default)>" >/dev/ttyS0`+"\n", try)
		if err := vm.TypeText(ctx, cmd); err != nil {
			t.Logf("hostname probe: %v", err)
			return probeResult{}
		}
		re := regexp.MustCompile(fmt.Sprintf(`PXEKIT-PROBE%d HOST=<([^>]*)> DOMAIN=<([^>]*)> ETC=<([^>]*)> ROUTE=<([^>]*)>`, try))
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		line, err := vm.WaitSerial(wctx, re)
		wcancel()
		if err == nil {
			t.Logf("serial console: %q", strings.TrimSpace(line[strings.Index(line, "PXEKIT-PROBE"):]))
			m := re.FindStringSubmatch(line)
			return probeResult{host: m[1], domain: m[2], etcHostname: m[3], defaultRoutes: m[4]}
		}
		t.Logf("hostname probe, try %d: no answer on the serial console: %v", try, err)
	}
	return probeResult{}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// lastQuestion returns the last question title on the serial console, for
// failure messages.
func lastQuestion(serial string) string {
	data, err := os.ReadFile(serial)
	if err != nil {
		return ""
	}
	all := dinetQuestion.FindAll(data, -1)
	if len(all) == 0 {
		return ""
	}
	return string(all[len(all)-1])
}

func dhcpTypeName(t uint8) string {
	names := map[uint8]string{1: "DISCOVER", 3: "REQUEST", 4: "DECLINE", 7: "RELEASE", 8: "INFORM"}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("type-%d", t)
}

// dnsQuestion decodes the first question of a DNS query (name and type),
// for the log. The bytes come from the VM, so every length is checked.
func dnsQuestion(b []byte) string {
	if len(b) < 12 {
		return "?"
	}
	var labels []string
	i := 12
	for i < len(b) && len(labels) < 64 {
		n := int(b[i])
		if n == 0 {
			i++
			break
		}
		if n > 63 || i+1+n > len(b) {
			return "?"
		}
		labels = append(labels, string(b[i+1:i+1+n]))
		i += 1 + n
	}
	qtype := "?"
	if i+2 <= len(b) {
		switch uint16(b[i])<<8 | uint16(b[i+1]) {
		case 1:
			qtype = "A"
		case 12:
			qtype = "PTR"
		case 28:
			qtype = "AAAA"
		default:
			qtype = fmt.Sprint(uint16(b[i])<<8 | uint16(b[i+1]))
		}
	}
	return strings.Join(labels, ".") + " " + qtype
}
