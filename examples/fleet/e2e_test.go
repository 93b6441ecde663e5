package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/vmtest"
)

// The Debian 12 netboot installer from the debian-installer-12-netboot-amd64
// package: what both machines of the rack install.
const debianNetboot = "/usr/lib/debian-installer/images/12/amd64/text"

// TestFleetE2E is the install-once story on real firmware: two UEFI
// machines with different MACs each get their own menu and answer file;
// the first reports completion as its installer would, is reset, and its
// next network boot gets the local-disk menu instead of the installer.
func TestFleetE2E(t *testing.T) {
	requireVMs(t)
	requireDebianNetboot(t)
	bin, lab, server := e2eLab(t)
	const macA, macB = "52:54:00:f1:e2:01", "52:54:00:f1:e2:02"
	inventory := e2eInventory(t, t.TempDir(), "ignore", e2eHash, debianNetboot, server, fmt.Sprintf(`
  - {mac: "%s", hostname: web01, profile: debian12, layout: lvm}
  - mac: "%s"
    hostname: db01
    profile: debian12
    overrides: {packages: {names: [postgresql]}}
`, macA, macB))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	srv := startLabFleet(ctx, t, lab, nil, bin, "-inventory", inventory, "-iface", lab.Iface(),
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150", "-dns", server, "-progress", "log")

	// Machine A installs: its own menu, its own answer file.
	vmA := lab.Boot(t, vmtest.VMConfig{Name: "web01", MAC: macA, DiskMB: 64})
	if _, err := srv.WaitLog(ctx, answerLog(macA)); err != nil {
		t.Fatalf("web01 never fetched its answer file: %v\n%s", err, vmA.TimelineString())
	}
	t.Logf("web01: answer file after %s", vmA.Mark("answer").Round(100*time.Millisecond))
	// The answer file is the machine's only: its token is in the state
	// file, and DHCP pinned it to the machine's lease, so the lab's own
	// address is refused it.
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"
	tokenA := tokenOf(t, state, macA)
	_, err := lab.Exec(ctx, "busybox", "wget", "-q", "-O", "-", "http://"+server+":8080/hosts/"+dashedMAC(macA)+"/"+tokenA+"/preseed.cfg")
	require.Error(t, err, "web01's answer file served to another address")
	requireState(ctx, t, lab, server, macA, "installing")
	// d-i was told log_host/log_port: its log is the installing stage.
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = srv.WaitLog(sctx, regexp.MustCompile(`stage=installing mac=`+macA+` .*proto=syslog`))
	scancel()
	require.NoError(t, err, "no installer log arrived over syslog")

	// The installer's report, sent the way d-i's late_command sends it.
	postReport(ctx, t, lab, server, macA, tokenA, `{"hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"user ops","ok":true}]}`)
	requireState(ctx, t, lab, server, macA, "installed")

	// Reset: the same firmware boots the network first again and now gets
	// the local-disk menu; the installer kernel is not fetched again.
	kernelsBefore := countLog(t, srv.LogPath(), `stage=kernel mac=`+macA)
	require.NoError(t, vmA.Reboot())
	local := regexp.MustCompile(`stage=menu mac=` + macA + ` .*next=local`)
	if _, err := srv.WaitLog(ctx, local); err != nil {
		t.Fatalf("after its report web01 was not sent to its disk: %v\n%s", err, vmA.TimelineString())
	}
	t.Logf("web01: local-boot menu %s after power-on", vmA.Mark("local boot").Round(100*time.Millisecond))
	// This VM's disk is blank: the local entry finds no EFI loader on it
	// and leaves GRUB (TestFirmwareLocalDisk boots a real disk).
	if _, err := vmA.WaitSerial(ctx, regexp.MustCompile(`(?i)No EFI loader found|boot0002|misc_device|boot failed|no bootable|Start PXE over IPv4`)); err != nil {
		t.Logf("serial console after local boot did not show GRUB or the firmware moving on: %v", err)
	}
	time.Sleep(5 * time.Second)
	require.Equal(t, kernelsBefore, countLog(t, srv.LogPath(), `stage=kernel mac=`+macA), "web01 loaded the installer again after reporting")
	require.NoError(t, vmA.Close())

	// Machine B: a different MAC, a different answer file.
	vmB := lab.Boot(t, vmtest.VMConfig{Name: "db01", MAC: macB})
	if _, err := srv.WaitLog(ctx, answerLog(macB)); err != nil {
		t.Fatalf("db01 never fetched its answer file: %v\n%s", err, vmB.TimelineString())
	}
	t.Logf("db01: answer file after %s", vmB.Mark("answer").Round(100*time.Millisecond))
	require.NotEqual(t, tokenA, tokenOf(t, state, macB))

	// What the operator sees.
	status := fetch(ctx, t, lab, "http://"+server+":8080/status.json")
	t.Logf("status.json:\n%s", status)
}

func dashedMAC(mac string) string { return strings.ReplaceAll(mac, ":", "-") }

// e2eHash is the ops user's password hash in the inventories of the tests
// that run Debian's installer.
const e2eHash = "$6$pxekit$WfYo0sFqzM5aEN6z0gTt8NwqX3T0hRjBsS0x8d6m1wzG7oVZ8JYyX9Lr9oH2rWw6iZpP3pX0m3fZ8dYw9bQ1c/"

// requireVMs skips t in -short mode and where vmtest cannot boot VMs.
func requireVMs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode (boots QEMU, minutes)")
	}
	vmtest.Require(t)
}

// requireDebianNetboot skips t unless Debian's netboot installer is
// installed at debianNetboot.
func requireDebianNetboot(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(debianNetboot, "debian-installer/amd64/linux")); err != nil {
		t.Skipf("e2e: skipped: Debian's netboot installer is not installed (Debian package debian-installer-12-netboot-amd64): %v", err)
	}
}

// e2eLab builds the fleet program and makes a lab to run it in; it
// returns the program, the lab and the lab server's address.
func e2eLab(t *testing.T) (bin string, lab *vmtest.Lab, server string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "fleet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	lab = vmtest.NewLab(t, vmtest.LabConfig{})
	return bin, lab, lab.ServerIP().String()
}

// e2eInventory writes dir/fleet.yaml and returns its path: unknown MACs
// get unknown, the ops user has the password hash, profile debian12
// installs Debian 12 from the netboot tree with the lab server's mirror on
// the serial console, and hosts are the YAML list items under "hosts:".
func e2eInventory(t *testing.T, dir, unknown, hash, netboot, server, hosts string) string {
	t.Helper()
	inventory := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(inventory, []byte(fmt.Sprintf(`unknown: %s
defaults:
  disk: {wipe: true}
  users: [{name: ops, sudo: true, password: {hash: %q}}]
profiles:
  debian12:
    os: debian-12
    netboot: %s
    mirror: http://%s:8080/mirror/debian
    console: ttyS0,115200n8
hosts:
%s`, unknown, hash, netboot, server, strings.TrimPrefix(hosts, "\n"))), 0o644))
	return inventory
}

// startLabFleet starts the fleet program in the lab with env added to its
// environment and waits until it serves.
func startLabFleet(ctx context.Context, t *testing.T, lab *vmtest.Lab, env []string, bin string, args ...string) *vmtest.Proc {
	t.Helper()
	srv := lab.StartEnv(t, "fleet", env, bin, args...)
	_, err := srv.WaitLog(ctx, regexp.MustCompile(`pxekit fleet on`))
	require.NoError(t, err, "server did not start")
	return srv
}

// answerLog matches the server's log line of mac fetching its answer file.
func answerLog(mac string) *regexp.Regexp {
	return regexp.MustCompile(`stage=answer mac=` + mac + ` .*detail=hosts/` + dashedMAC(mac) + `/preseed.cfg`)
}

// postReport sends the installer's report for mac with its token from the
// lab's namespace, as d-i's late_command does.
func postReport(ctx context.Context, t *testing.T, lab *vmtest.Lab, server, mac, token, report string) {
	t.Helper()
	_, err := lab.Exec(ctx, "busybox", "wget", "-q", "-O", "/dev/null", "--header=Content-Type: application/json",
		"--post-data="+report, "http://"+server+":8080/api/report/"+dashedMAC(mac)+"/"+token)
	require.NoError(t, err, "report of %s", mac)
}

// fetch GETs url from inside the lab's namespace.
func fetch(ctx context.Context, t *testing.T, lab *vmtest.Lab, url string) string {
	t.Helper()
	out, err := lab.Exec(ctx, "busybox", "wget", "-q", "-O", "-", url)
	require.NoError(t, err)
	return string(out)
}

// requireState checks the install-once state of mac in status.json.
func requireState(ctx context.Context, t *testing.T, lab *vmtest.Lab, server, mac, state string) {
	t.Helper()
	var st Status
	require.NoError(t, json.Unmarshal([]byte(fetch(ctx, t, lab, "http://"+server+":8080/status.json")), &st))
	for _, h := range st.Hosts {
		if h.MAC == mac {
			require.Equal(t, InstallState(state), h.State, "state of %s", mac)
			return
		}
	}
	t.Fatalf("%s is not in status.json", mac)
}

func countLog(t *testing.T, file, pattern string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return len(regexp.MustCompile(pattern).FindAllIndex(data, -1))
}
