package dhcpsrv

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	crashHelperEnv     = "DHCPSRV_CRASH_HELPER_LEASES"
	crashHelperPathEnv = "DHCPSRV_CRASH_HELPER_PATH" // "handle" or "serve"
)

// ackPrinter stands in for the server socket: it prints every ACK at the
// moment the server sends it and hands every reply to the client waiting
// for its transaction.
type ackPrinter struct {
	mu      sync.Mutex
	w       *bufio.Writer
	waiting map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
}

func (p *ackPrinter) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.MessageType() == dhcpv4.MessageTypeAck {
		fmt.Fprintf(p.w, "ACK %s %s\n", m.ClientHWAddr, m.YourIPAddr)
		p.w.Flush()
	}
	if ch := p.waiting[m.TransactionID]; ch != nil {
		ch <- m
	}
	return len(b), nil
}

// roundTrip runs req through the serving path (asynchronous lease writes,
// answer sent by the store's goroutine) and waits for the answer.
func (p *ackPrinter) roundTrip(s *Server, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	ch := make(chan *dhcpv4.DHCPv4, 1)
	p.mu.Lock()
	p.waiting[req.TransactionID] = ch
	p.mu.Unlock()
	defer func() { p.mu.Lock(); delete(p.waiting, req.TransactionID); p.mu.Unlock() }()
	s.serveOne(context.Background(), p, 67, zeroSrc, req, false)
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		return nil
	}
}

func crashSubnet() Subnet {
	return Subnet{Prefix: netip.MustParsePrefix("10.88.0.0/16"), First: netip.MustParseAddr("10.88.1.0"),
		Last: netip.MustParseAddr("10.88.255.254"), LeaseTime: time.Hour}
}

// TestCrashHelper is not a test: re-executed with crashHelperEnv set, it is
// a full-mode server under load (16 clients doing DORA as fast as they can)
// that prints every ACK it sent, until it is killed.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		return // only meaningful as the subprocess of TestLeasesSurviveKill9
	}
	s, err := New(Config{Interface: "crash0", ServerIP: netip.MustParseAddr("10.88.0.1"), Mode: ModeFull,
		Subnet: crashSubnet(), LeaseFile: path})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	serve := os.Getenv(crashHelperPathEnv) == "serve"
	p := &ackPrinter{w: bufio.NewWriter(os.Stdout), waiting: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				mac := mustMAC(fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", g, os.Getpid()%256, (i>>8)&0xff, i&0xff))
				disc := plainDiscover(mac)
				disc.TransactionID = dhcpv4.TransactionID{byte(g), byte(i >> 16), byte(i >> 8), byte(i)}
				if serve {
					offer := p.roundTrip(s, disc)
					if offer != nil {
						p.roundTrip(s, asRequest(disc, s.cfg.ServerIP, addrOf(offer.YourIPAddr)))
					}
					continue
				}
				out, err := s.handle(context.Background(), disc, 67, zeroSrc)
				if err != nil || out == nil {
					continue
				}
				offer, _ := dhcpv4.FromBytes(out.bytes)
				out, err = s.handle(context.Background(), asRequest(disc, s.cfg.ServerIP, addrOf(offer.YourIPAddr)), 67, zeroSrc)
				if err != nil || out == nil {
					continue
				}
				_, _ = p.WriteToUDPAddrPort(out.bytes, out.dst)
			}
		}()
	}
	wg.Wait()
}

func TestLeasesSurviveKill9(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"handle (lease written before returning)", "handle"},
		{"serving loop (ACK sent by the store after its fsync)", "serve"},
	} {
		t.Run(tc.name, func(t *testing.T) { leasesSurviveKill9(t, tc.path) })
	}
}

func leasesSurviveKill9(t *testing.T, helperPath string) {
	path := filepath.Join(t.TempDir(), "leases")
	acked := map[string]string{} // ip -> mac
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+path, crashHelperPathEnv+"="+helperPath)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		n := 0
		for n < 400 && sc.Scan() {
			f := strings.Fields(sc.Text())
			require.Len(t, f, 3, sc.Text())
			if prev, ok := acked[f[2]]; ok && prev != f[1] {
				t.Fatalf("round %d: %s given to %s and %s", round, f[2], prev, f[1])
			}
			acked[f[2]] = f[1]
			n++
		}
		require.Equal(t, 400, n, "helper stopped early")
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		// Lines already written before the kill landed count too.
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 {
				acked[f[2]] = f[1]
			}
		}
		_ = cmd.Wait()

		st, err := OpenFileStore(path)
		require.NoError(t, err)
		leases, err := st.Load(context.Background())
		require.NoError(t, err)
		require.NoError(t, st.Close())
		byIP := map[string]Lease{}
		for _, l := range leases {
			byIP[l.IP.String()] = l
		}
		for ip, mac := range acked {
			l, ok := byIP[ip]
			if assert.True(t, ok, "round %d: ACKed lease %s lost", round, ip) {
				assert.Equal(t, mac, l.MAC.String(), ip)
				assert.Equal(t, LeaseBound, l.State, ip)
			}
		}
	}
}
