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
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode (boots QEMU, minutes)")
	}
	vmtest.Require(t)
	if _, err := os.Stat(filepath.Join(debianNetboot, "debian-installer/amd64/linux")); err != nil {
		t.Skipf("e2e: skipped: Debian's netboot installer is not installed (Debian package debian-installer-12-netboot-amd64): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fleet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	lab := vmtest.NewLab(t, vmtest.LabConfig{})
	server := lab.ServerIP().String()
	const macA, macB = "52:54:00:f1:e2:01", "52:54:00:f1:e2:02"
	dir := t.TempDir()
	inventory := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(inventory, []byte(fmt.Sprintf(`
unknown: ignore
defaults:
  disk: {wipe: true}
  users: [{name: ops, sudo: true, password: {hash: "$6$pxekit$WfYo0sFqzM5aEN6z0gTt8NwqX3T0hRjBsS0x8d6m1wzG7oVZ8JYyX9Lr9oH2rWw6iZpP3pX0m3fZ8dYw9bQ1c/"}}]
profiles:
  debian12:
    os: debian-12
    netboot: %s
    mirror: http://%s:8080/mirror/debian
    console: ttyS0,115200n8
hosts:
  - {mac: "%s", hostname: web01, profile: debian12, layout: lvm}
  - mac: "%s"
    hostname: db01
    profile: debian12
    overrides: {packages: {names: [postgresql]}}
`, debianNetboot, server, macA, macB)), 0o644))

	srv := lab.Start(t, "fleet", bin, "-inventory", inventory, "-iface", lab.Iface(),
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150", "-dns", server, "-progress", "log")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	_, err = srv.WaitLog(ctx, regexp.MustCompile(`pxekit fleet on`))
	require.NoError(t, err, "server did not start")

	// Machine A installs: its own menu, its own answer file.
	vmA := lab.Boot(t, vmtest.VMConfig{Name: "web01", MAC: macA, DiskMB: 64})
	answerA := regexp.MustCompile(`stage=answer mac=` + macA + ` .*detail=hosts/` + dashedMAC(macA) + `/preseed.cfg`)
	if _, err := srv.WaitLog(ctx, answerA); err != nil {
		t.Fatalf("web01 never fetched its answer file: %v\n%s", err, vmA.TimelineString())
	}
	t.Logf("web01: answer file after %s", vmA.Mark("answer").Round(100*time.Millisecond))
	// The answer file is the machine's only: its token is in the state
	// file, and DHCP pinned it to the machine's lease, so the lab's own
	// address is refused it.
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"
	tokenA := tokenOf(t, state, macA)
	_, err = lab.Exec(ctx, "busybox", "wget", "-q", "-O", "-", "http://"+server+":8080/hosts/"+dashedMAC(macA)+"/"+tokenA+"/preseed.cfg")
	require.Error(t, err, "web01's answer file served to another address")
	requireState(ctx, t, lab, server, macA, "installing")
	// d-i was told log_host/log_port: its log is the installing stage.
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = srv.WaitLog(sctx, regexp.MustCompile(`stage=installing mac=`+macA+` .*proto=syslog`))
	scancel()
	require.NoError(t, err, "no installer log arrived over syslog")

	// The installer's report, sent the way d-i's late_command sends it.
	report := `{"hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"user ops","ok":true}]}`
	_, err = lab.Exec(ctx, "busybox", "wget", "-q", "-O", "/dev/null", "--header=Content-Type: application/json",
		"--post-data="+report, "http://"+server+":8080/api/report/"+dashedMAC(macA)+"/"+tokenA)
	require.NoError(t, err)
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
	answerB := regexp.MustCompile(`stage=answer mac=` + macB + ` .*detail=hosts/` + dashedMAC(macB) + `/preseed.cfg`)
	if _, err := srv.WaitLog(ctx, answerB); err != nil {
		t.Fatalf("db01 never fetched its answer file: %v\n%s", err, vmB.TimelineString())
	}
	t.Logf("db01: answer file after %s", vmB.Mark("answer").Round(100*time.Millisecond))
	require.NotEqual(t, tokenA, tokenOf(t, state, macB))

	// What the operator sees.
	status := fetch(ctx, t, lab, "http://"+server+":8080/status.json")
	t.Logf("status.json:\n%s", status)
}

func dashedMAC(mac string) string { return strings.ReplaceAll(mac, ":", "-") }

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
