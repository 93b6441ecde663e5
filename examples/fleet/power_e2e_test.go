package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFleetE2EPower is lights-out on real firmware: the VM's BMC is
// OpenIPMI's ipmi_sim, whose power is the QEMU process (ipmi_sim starts
// it with startcmd and talks to its ipmi-bmc-extern device), so "power
// on" through IPMI starts a UEFI machine. fleet -power finds the host
// armed and off, asks for a network boot (ipmi_sim refuses it: logged, the
// host is powered on anyway), powers it on, and the machine network-boots
// to its answer file. After the installer's report, one call of the
// reinstall API re-arms it and power-cycles it through the BMC, and it
// network-boots to its answer file a second time.
func TestFleetE2EPower(t *testing.T) {
	requireVMs(t)
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		t.Skip("e2e: skipped: ipmi_sim is not installed (Debian package openipmi)")
	}
	requireDebianNetboot(t)
	ovmfCode, ovmfVars := "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"
	if _, err := os.Stat(ovmfCode); err != nil {
		ovmfCode, ovmfVars = "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"
	}
	bin, lab, server := e2eLab(t)
	const mac = "52:54:00:f1:e3:01"
	// The namespace is the lab's own: these ports are free in it.
	const bmcPort, vmPort = 9623, 9002
	const bmcPassword = "e2e-bmc-pw" // test only; fleet gets it from its environment
	dir := t.TempDir()

	// The machine: what vmtest boots (OVMF, virtio NIC first, no disk),
	// plus the IPMI device that connects back to ipmi_sim.
	vars := filepath.Join(dir, "OVMF_VARS.fd")
	data, err := os.ReadFile(ovmfVars)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(vars, data, 0o600))
	serial := filepath.Join(lab.OutDir(), "power-vm-serial.log")
	qemuLog := filepath.Join(lab.OutDir(), "power-vm-qemu.log")
	qemu := []string{"qemu-system-x86_64",
		"-name", "pxekit-power", "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "1",
		"-nodefaults", "-no-user-config", "-vga", "std", "-display", "none",
		"-netdev", "tap,id=net0,ifname=" + lab.Iface() + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac=" + mac + ",bootindex=1,romfile=",
		// append: ipmi_sim restarts the process at each power on.
		"-chardev", "file,id=ser0,append=on,path=" + serial, "-serial", "chardev:ser0",
		"-monitor", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-chardev", fmt.Sprintf("socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=10", vmPort),
		"-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
		"-device", "isa-ipmi-bt,bmc=bmc0",
	}
	script := filepath.Join(dir, "vm.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexec "+shellQuote(qemu)+" >>"+shellQuote([]string{qemuLog})+" 2>&1\n"), 0o755))

	// The BMC: ipmi_sim on the namespace's loopback, one admin user,
	// power = the machine's process, off at start.
	conf := fmt.Sprintf(`name "pxekit-e2e"
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
  serial 15 127.0.0.1 %d codec VM
  startcmd "%s"
  startnow false
  poweroff_wait 5
  kill_wait 2
`, bmcPort, bmcPassword, vmPort, script)
	confFile := filepath.Join(dir, "lan.conf")
	require.NoError(t, os.WriteFile(confFile, []byte(conf), 0o600))
	emu := filepath.Join(dir, "sim.emu")
	require.NoError(t, os.WriteFile(emu, []byte("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n"), 0o600))
	simState := filepath.Join(dir, "sim-state")
	require.NoError(t, os.Mkdir(simState, 0o700))
	sim := lab.Start(t, "ipmi_sim", "ipmi_sim", "-c", confFile, "-f", emu, "-s", simState, "-n")

	inventory := e2eInventory(t, dir, "ignore", e2eHash, debianNetboot, server, fmt.Sprintf(`
  - mac: "%s"
    hostname: web01
    profile: debian12
    bmc: {type: ipmi, address: "127.0.0.1:%d", user: admin, password_env: PXEKIT_E2E_BMC}
`, mac, bmcPort))

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	start := time.Now()
	secs := func() string { return fmt.Sprintf("%.1fs", time.Since(start).Seconds()) }

	// -power-check first: read-only, the machine stays off.
	check, err := lab.Exec(ctx, "env", "PXEKIT_E2E_BMC="+bmcPassword, bin, "-inventory", inventory, "-power-check")
	t.Logf("fleet -power-check (%s):\n%s", secs(), check)
	require.NoError(t, err)
	require.Regexp(t, `(?m)^web01\s+127\.0\.0\.1:9623\s+ipmi\s+off\s*$`, string(check))
	require.NotContains(t, string(check), bmcPassword)

	srv := startLabFleet(ctx, t, lab, []string{"PXEKIT_E2E_BMC=" + bmcPassword}, bin, "-inventory", inventory, "-iface", lab.Iface(),
		"-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150", "-dns", server, "-progress", "log", "-power")

	// fleet finds web01 armed and off: network boot asked (refused by
	// ipmi_sim, one line), powered on.
	if _, err := srv.WaitLog(ctx, regexp.MustCompile(`msg="power: done" host=web01 .*was=off action=power-on`)); err != nil {
		t.Fatalf("fleet did not power web01 on: %v", err)
	}
	t.Logf("%s: fleet powered web01 on through ipmi_sim", secs())
	require.Equal(t, 1, countLog(t, srv.LogPath(), `boot override refused, powering anyway" host=web01`))

	answer := answerLog(mac)
	if _, err := srv.WaitLog(ctx, answer); err != nil {
		t.Fatalf("web01 never fetched its answer file: %v\n%s", err, tail(serial, 2000))
	}
	t.Logf("%s: web01 fetched its answer file (first install)", secs())
	requireState(ctx, t, lab, server, mac, "installing")
	status := fetch(ctx, t, lab, "http://"+server+":8080/status.json")
	require.Contains(t, status, `"action": "power-on"`)
	require.Contains(t, status, "the BMC refused the network boot override")

	// The installer's report.
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"
	postReport(ctx, t, lab, server, mac, tokenOf(t, state, mac), `{"hostname":"web01","os":"debian-12","status":"ok","checks":[{"name":"user ops","ok":true}]}`)
	requireState(ctx, t, lab, server, mac, "installed")

	// One API call: re-armed, and power-cycled through the BMC.
	resp, err := lab.Exec(ctx, "busybox", "wget", "-q", "-O", "-", "--header=X-Pxekit-Request: 1",
		"--header=Content-Type: application/json", "--post-data={}",
		"http://127.0.0.1:8080/api/hosts/web01/reinstall")
	require.NoError(t, err)
	t.Logf("%s: reinstall API: %s", secs(), strings.TrimSpace(string(resp)))
	require.Contains(t, string(resp), `"power":"queued"`)
	if _, err := srv.WaitLog(ctx, regexp.MustCompile(`msg="power: done" host=web01 .*was=on action=power-cycle`)); err != nil {
		t.Fatalf("fleet did not power-cycle web01: %v", err)
	}
	t.Logf("%s: fleet power-cycled web01", secs())
	require.Equal(t, 2, countLog(t, srv.LogPath(), `boot override refused, powering anyway" host=web01`))

	deadline := time.Now().Add(15 * time.Minute)
	for countLog(t, srv.LogPath(), answer.String()) < 2 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("web01 did not fetch its answer file again after the power cycle\n%s", tail(serial, 2000))
		}
		if exited, err := sim.Exited(); exited {
			t.Fatalf("ipmi_sim exited: %v", err)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("%s: web01 fetched its answer file again (second install)", secs())
	requireState(ctx, t, lab, server, mac, "installing")
	t.Logf("status.json:\n%s", fetch(ctx, t, lab, "http://"+server+":8080/status.json"))
}

// shellQuote quotes words for sh.
func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// tail is the end of a file, for failure messages.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
