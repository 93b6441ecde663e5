package power

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/testutil"
)

// simPassword is the simulated BMC's admin password (test only).
const simPassword = "s3cret-sim-pw"

type ipmiSim struct {
	addr string // 127.0.0.1:port
	dir  string // state written by the chassis-control script, if any
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// chassisScript is an ipmi_sim chassis_control program: it keeps power
// and boot device in files, as a real board's power and boot lines would.
const chassisScript = `#!/bin/sh
# Test stand-in for a board: ipmi_sim runs "<script> <dev> get|set parm [val]...".
dir=$(dirname "$0")
shift # device
op=$1; shift
case $op in
get)
	for p in "$@"; do
		case $p in
		power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)";;
		boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
		*) echo "Invalid parameter: $p"; exit 1;;
		esac
	done;;
set)
	while [ $# -ge 2 ]; do
		echo "$1 $2" >> "$dir/log"
		case $1 in
		power) echo "$2" > "$dir/power";;
		boot) echo "$2" > "$dir/boot";;
		reset) ;;
		*) echo "Invalid parameter: $1"; exit 1;;
		esac
		shift 2
	done;;
*) exit 1;;
esac
`

// startSim starts ipmi_sim on a free 127.0.0.1 UDP port with one admin
// user. Without script, power is the life of a stand-in process
// ("sleep"), as ipmi_sim's startcmd does for a VM, and the simulator has
// no boot-flags support. With script, a chassis-control program keeps
// power and boot device in files under sim.dir.
func startSim(t *testing.T, script bool) *ipmiSim {
	t.Helper()
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		t.Skip("ipmi_sim not installed (Debian package openipmi): skipping the IPMI simulator tests")
	}
	dir := t.TempDir()
	udp := freePort(t, "udp")
	var conf strings.Builder
	fmt.Fprintf(&conf, `name "pxekit"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  user 2 true "admin" "%s" admin 10 md5
  user 3 true "oper" "%s" operator 10 md5
`, udp, simPassword, simPassword)
	if script {
		p := filepath.Join(dir, "chassis.sh")
		require.NoError(t, os.WriteFile(p, []byte(chassisScript), 0o755))
		fmt.Fprintf(&conf, "  chassis_control \"%s 0x20\"\n", p)
	} else {
		// Channel 15 with the VM codec is what lets ipmi_sim power the
		// startcmd process on and off; nothing connects to it here.
		fmt.Fprintf(&conf, `  serial 15 127.0.0.1 %d codec VM
  startcmd "sleep 300"
  startnow false
  poweroff_wait 1
  kill_wait 1
`, freePort(t, "tcp"))
	}
	confFile := filepath.Join(dir, "lan.conf")
	require.NoError(t, os.WriteFile(confFile, []byte(conf.String()), 0o600))
	emu := filepath.Join(dir, "sim.emu")
	require.NoError(t, os.WriteFile(emu, []byte("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n"), 0o600))
	state := filepath.Join(dir, "state")
	require.NoError(t, os.Mkdir(state, 0o700))

	cmd := exec.Command("ipmi_sim", "-c", confFile, "-f", emu, "-s", state, "-n")
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group: the cleanup kills the simulator and the
	// stand-in processes it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("ipmi_sim (pid %d) did not exit", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("ipmi_sim output:\n%s", out.String())
		}
	})

	sim := &ipmiSim{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(udp)), dir: dir}
	// Ready when it answers; bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := sim.open(t, BMC{CipherSuite: 3}, time.Second)
		_, err := c.PowerState(context.Background())
		_ = c.Close(context.Background())
		if err == nil {
			return sim
		}
		select {
		case <-done:
			t.Fatalf("ipmi_sim exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipmi_sim did not answer within 10s: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// open returns a controller for the simulator; over fills in fields.
func (s *ipmiSim) open(t *testing.T, over BMC, timeout time.Duration) *ipmiController {
	t.Helper()
	b := BMC{Type: IPMI, Address: s.addr, User: "admin", PasswordEnv: "PXEKIT_TEST_SIM_PW", CipherSuite: over.CipherSuite}
	if over.User != "" {
		b.User = over.User
	}
	if over.PasswordEnv != "" {
		b.PasswordEnv = over.PasswordEnv
	}
	if os.Getenv("PXEKIT_TEST_SIM_PW") != simPassword {
		t.Setenv("PXEKIT_TEST_SIM_PW", simPassword)
	}
	c, err := Open(b, Options{Timeout: timeout})
	require.NoError(t, err)
	return c.(*ipmiController)
}

// waitState polls until the power state is want; bounded.
func waitState(t *testing.T, c Controller, want PowerState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.PowerState(context.Background())
		require.NoError(t, err)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("power state %q, want %q after 10s", st, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestIPMISimPower(t *testing.T) {
	sim := startSim(t, false)
	ctx := context.Background()
	// Default cipher suite: ipmi_sim refuses 17's SHA-256, so this also
	// exercises the fallback to 3.
	c := sim.open(t, BMC{}, 5*time.Second)
	defer c.Close(ctx)

	st, err := c.PowerState(ctx)
	require.NoError(t, err)
	assert.Equal(t, StateOff, st)
	assert.Equal(t, 3, int(c.suite), "fell back to cipher suite 3")

	require.NoError(t, c.PowerOn(ctx))
	waitState(t, c, StateOn)

	require.NoError(t, c.PowerCycle(ctx))
	// ipmi_sim powers off, then on again a second later.
	waitState(t, c, StateOn)

	require.NoError(t, c.control(ctx, "chassis power off", chassis.ChassisControlPowerDown))
	waitState(t, c, StateOff)

	// Without a chassis-control program ipmi_sim refuses boot flags
	// ("Invalid data field in request"), with and without the EFI bit.
	mode, err := c.SetNextBoot(ctx, BootUEFI)
	require.ErrorIs(t, err, ErrBootOverride)
	assert.Equal(t, BootAnyMode, mode)
	t.Logf("boot override refused: %v", err)
	assert.Contains(t, err.Error(), "completion code 0xcc")
	assert.Contains(t, err.Error(), "also without the EFI flag")
	assert.Contains(t, err.Error(), "Set System Boot Options")
	// The session survives a refusal.
	sess := c.c
	_, err = c.PowerState(ctx)
	require.NoError(t, err)
	assert.Same(t, sess, c.c)

	require.NoError(t, c.Close(ctx))
	_, err = c.PowerState(ctx)
	require.Error(t, err, "calls after Close fail")
}

func TestIPMISimAuthAndCipher(t *testing.T) {
	sim := startSim(t, false)
	ctx := context.Background()

	t.Setenv("PXEKIT_TEST_WRONG_PW", "not-the-password")
	c := sim.open(t, BMC{PasswordEnv: "PXEKIT_TEST_WRONG_PW"}, 5*time.Second)
	_, err := c.PowerState(ctx)
	require.ErrorIs(t, err, ErrAuth)
	t.Logf("wrong password: %v", err)
	assert.NotContains(t, err.Error(), "not-the-password")
	assert.NotContains(t, err.Error(), simPassword)
	assert.False(t, IsTransient(err))
	require.NoError(t, c.Close(ctx))

	c = sim.open(t, BMC{User: "nobody"}, 5*time.Second)
	_, err = c.PowerState(ctx)
	require.ErrorIs(t, err, ErrAuth)
	t.Logf("unknown user: %v", err)
	require.NoError(t, c.Close(ctx))

	// An account limited to Operator privilege is enough.
	c = sim.open(t, BMC{User: "oper"}, 5*time.Second)
	require.NoError(t, c.PowerOn(ctx))
	waitState(t, c, StateOn)
	require.NoError(t, c.Close(ctx))

	// Pinned to 17: no fallback, a clear refusal.
	c = sim.open(t, BMC{CipherSuite: 17}, 5*time.Second)
	_, err = c.PowerState(ctx)
	require.ErrorIs(t, err, ErrUnsupported)
	t.Logf("cipher suite 17 pinned: %v", err)
	assert.Contains(t, err.Error(), "cipher suite 17")
	require.NoError(t, c.Close(ctx))
}

func TestIPMIUnreachable(t *testing.T) {
	// A UDP port nobody listens on: loopback answers with ICMP port
	// unreachable or nothing; either way the call must end, bounded.
	port := freePort(t, "udp")
	t.Setenv("PXEKIT_TEST_SIM_PW", simPassword)
	c, err := Open(BMC{Type: IPMI, Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), User: "admin", PasswordEnv: "PXEKIT_TEST_SIM_PW"},
		Options{Timeout: time.Second})
	require.NoError(t, err)
	start := time.Now()
	_, err = c.PowerState(context.Background())
	require.ErrorIs(t, err, ErrUnreachable)
	assert.True(t, IsTransient(err))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.NotContains(t, err.Error(), simPassword)
	require.NoError(t, c.Close(context.Background()))

	// A BMC that stays silent: go-ipmi's retransmissions and our timeout
	// end the call.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	c, err = Open(BMC{Type: IPMI, Address: pc.LocalAddr().String(), User: "admin", PasswordEnv: "PXEKIT_TEST_SIM_PW"},
		Options{Timeout: time.Second})
	require.NoError(t, err)
	start = time.Now()
	_, err = c.PowerState(context.Background())
	require.ErrorIs(t, err, ErrUnreachable)
	t.Logf("silent BMC after %v: %v", time.Since(start).Round(time.Millisecond), err)
	assert.Less(t, time.Since(start), 4*time.Second)
	require.NoError(t, c.Close(context.Background()))
}

func TestIPMISimBootFlagsAndScheduler(t *testing.T) {
	sim := startSim(t, true)
	ctx := context.Background()
	c := sim.open(t, BMC{CipherSuite: 3}, 5*time.Second)
	defer c.Close(ctx)

	mode, err := c.SetNextBoot(ctx, BootUEFI)
	require.NoError(t, err)
	assert.Equal(t, BootUEFI, mode)
	boot, err := os.ReadFile(filepath.Join(sim.dir, "boot"))
	require.NoError(t, err)
	assert.Equal(t, "pxe\n", string(boot), "the PXE device selector reached the BMC")

	require.NoError(t, os.Remove(filepath.Join(sim.dir, "boot")))
	s := Scheduler{Parallel: 2, Backoff: Backoff{Attempts: 2, Initial: 10 * time.Millisecond}}
	rs := s.Run(ctx, []Target{{Name: "sim", Controller: c, Mode: BootLegacy}})
	require.Len(t, rs, 1)
	require.NoError(t, rs[0].Err)
	assert.Equal(t, StateOff, rs[0].State)
	assert.Equal(t, ActionOn, rs[0].Action)
	assert.True(t, rs[0].Done)
	assert.Equal(t, BootLegacy, rs[0].Boot)
	log, err := os.ReadFile(filepath.Join(sim.dir, "log"))
	require.NoError(t, err)
	assert.Equal(t, "boot pxe\nboot pxe\npower 1\n", string(log), "override first, then power on")
	waitState(t, c, StateOn)

	// On now: the next run power-cycles (ipmi_sim: off, then on after 1s).
	rs = s.Run(ctx, []Target{{Name: "sim", Controller: c}})
	require.NoError(t, rs[0].Err)
	assert.Equal(t, ActionCycle, rs[0].Action)
	waitState(t, c, StateOn)

	// Check-only changes nothing.
	before, _ := os.ReadFile(filepath.Join(sim.dir, "log"))
	rs = (&Scheduler{CheckOnly: true}).Run(ctx, []Target{{Name: "sim", Controller: c}})
	require.NoError(t, rs[0].Err)
	assert.Equal(t, StateOn, rs[0].State)
	assert.Equal(t, ActionNone, rs[0].Action)
	after, _ := os.ReadFile(filepath.Join(sim.dir, "log"))
	assert.Equal(t, string(before), string(after))
}
