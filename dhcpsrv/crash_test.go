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

const crashHelperEnv = "DHCPSRV_CRASH_HELPER_LEASES"

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
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				mac := mustMAC(fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", g, os.Getpid()%256, (i>>8)&0xff, i&0xff))
				disc := plainDiscover(mac)
				out, err := s.handle(context.Background(), disc, 67, zeroSrc)
				if err != nil || out == nil {
					continue
				}
				offer, _ := dhcpv4.FromBytes(out.bytes)
				out, err = s.handle(context.Background(), asRequest(disc, s.cfg.ServerIP, addrOf(offer.YourIPAddr)), 67, zeroSrc)
				if err != nil || out == nil {
					continue
				}
				ack, _ := dhcpv4.FromBytes(out.bytes)
				if ack.MessageType() != dhcpv4.MessageTypeAck {
					continue
				}
				mu.Lock()
				fmt.Fprintf(w, "ACK %s %s\n", mac, ack.YourIPAddr)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestLeasesSurviveKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	acked := map[string]string{} // ip -> mac
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
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
