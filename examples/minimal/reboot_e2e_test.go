package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/vmtest"
)

// TestFirmwareGRUBHTTPReboot reboots a machine the moment its installer
// kernel starts, after GRUB loaded kernel and initrd over HTTP, and wants
// the second boot to load them again and reach the answer file. GRUB 2.06
// opens its connections from the same source ports in every boot and
// boots without acknowledging the server's last FIN, so a server that
// kept the first boot's initrd connection in LAST_ACK would refuse the
// second boot's identical four-tuple: the kernel would come up without an
// initrd and panic (seen once in a reinstall a minute after an install).
func TestFirmwareGRUBHTTPReboot(t *testing.T) {
	requireNetbootVM(t, "two boots")
	bin := buildMinimal(t)
	lab := vmtest.NewLab(t, vmtest.LabConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	const mac = "52:54:00:e2:e0:07"
	srv := startInLab(ctx, t, lab, bin, "-dhcp", "full", "-pool", "10.77.0.100-10.77.0.150", "-grub-http")
	vm := lab.Boot(t, vmtest.VMConfig{Firmware: vmtest.UEFI, MAC: mac})

	initrd := regexp.MustCompile(`stage=initrd mac=` + mac + ` .*proto=http`)
	_, err := srv.WaitLog(ctx, initrd)
	require.NoError(t, err, "first boot: no initrd over HTTP\n%s", vm.TimelineString())
	_, err = vm.WaitSerial(ctx, regexp.MustCompile(`Linux version [0-9]`))
	require.NoError(t, err, "first boot: the kernel did not start\n%s", vm.TimelineString())
	first := vm.Mark("first-kernel")
	require.NoError(t, vm.Reboot()) // GRUB is gone; the installer has no address yet

	// The failure shows on the console at once; do not wait for the timeout.
	broken := make(chan string, 1)
	go func() {
		line, err := vm.WaitSerial(ctx, regexp.MustCompile(`error: connection timeout|Kernel panic`))
		if err == nil {
			broken <- line
			cancel()
		}
	}()
	_, err = srv.WaitLog(ctx, answerFetched)
	if err != nil {
		select {
		case line := <-broken:
			err = fmt.Errorf("%w; the console says %q", err, line)
		default:
		}
	}
	require.NoError(t, err, "second boot never fetched the answer file\n%s", vm.TimelineString())
	cancel() // stops the console watch
	log, err := os.ReadFile(srv.LogPath())
	require.NoError(t, err)
	require.Len(t, initrd.FindAll(log, -1), 2, "want one initrd over HTTP per boot")
	t.Logf("rebooted %s after power-on; second boot reached the answer file %s after power-on\n%s",
		first.Round(100*time.Millisecond), vm.Mark("answer").Round(100*time.Millisecond), vm.TimelineString())
}
