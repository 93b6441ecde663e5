package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQEMUArgsARM64(t *testing.T) {
	dir := t.TempDir()
	code, vars := filepath.Join(dir, "CODE.fd"), filepath.Join(dir, "VARS.fd")
	require.NoError(t, os.WriteFile(code, []byte("code"), 0o644))
	require.NoError(t, os.WriteFile(vars, []byte("vars"), 0o644))
	cfg := VMConfig{MAC: "52:54:00:A6:40:09"}
	require.NoError(t, fillVMConfig(&cfg))
	vm := &VM{cfg: cfg, lab: &Lab{name: "ns", iface: "tap0", out: dir}, run: dir, serial: filepath.Join(dir, "serial.log")}
	args, err := vm.qemuArgsARM64(firmwareFiles{code: code, vars: vars})
	require.NoError(t, err)
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-machine virt ", "-cpu cortex-a57 ", "-accel tcg ",
		// AAVMF's own virtio driver and PXE client (option 93 = 11).
		"virtio-net-pci,netdev=net0,mac=52:54:00:a6:40:09,bootindex=1,romfile= ",
		"if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"if=pflash,format=raw,unit=1,file=" + filepath.Join(dir, "AAVMF_VARS.fd"),
		"-serial chardev:ser0",
	} {
		assert.Contains(t, line, want)
	}
	got, err := os.ReadFile(filepath.Join(dir, "AAVMF_VARS.fd"))
	require.NoError(t, err)
	assert.Equal(t, "vars", string(got), "each VM writes its own copy of the variables")
}

func TestBootARM64RefusesConfig(t *testing.T) {
	l := &Lab{name: "ns", iface: "tap0", out: t.TempDir()}
	for name, cfg := range map[string]VMConfig{
		"http boot": {HTTPBoot: true},
		"e1000":     {NIC: "e1000"},
		"kvm":       {Accel: "kvm"},
		"bios":      {Firmware: BIOS},
		"two disks": {DiskMB: 1, Disk: "/nonexistent"},
	} {
		_, err := l.bootARM64(cfg)
		assert.Error(t, err, name)
	}
}
