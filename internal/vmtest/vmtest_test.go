package vmtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dhcpPacket is the little of a client's DHCP message the self-test needs.
type dhcpPacket struct {
	msgType     byte
	mac         net.HardwareAddr
	vendorClass string
	requestedIP net.IP
	at          time.Time
}

// parseDHCP reads a BOOTREQUEST: fixed header, magic cookie, then options
// (53 message type, 50 requested address, 60 vendor class).
func parseDHCP(b []byte) (dhcpPacket, bool) {
	if len(b) < 240 || b[0] != 1 || b[2] != 6 ||
		binary.BigEndian.Uint32(b[236:240]) != 0x63825363 {
		return dhcpPacket{}, false
	}
	p := dhcpPacket{mac: net.HardwareAddr(bytes.Clone(b[28:34]))}
	for opts := b[240:]; len(opts) > 0; {
		code := opts[0]
		if code == 0 {
			opts = opts[1:]
			continue
		}
		if code == 255 || len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			break
		}
		val := opts[2 : 2+int(opts[1])]
		switch code {
		case 53:
			if len(val) == 1 {
				p.msgType = val[0]
			}
		case 50:
			if len(val) == 4 {
				p.requestedIP = net.IP(bytes.Clone(val))
			}
		case 60:
			p.vendorClass = string(val)
		}
		opts = opts[2+int(opts[1]):]
	}
	return p, p.msgType != 0
}

func TestParseDHCP(t *testing.T) {
	b := make([]byte, 240)
	b[0], b[1], b[2] = 1, 1, 6
	copy(b[28:], []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56})
	binary.BigEndian.PutUint32(b[236:], 0x63825363)
	b = append(b, 53, 1, 1, 0, 60, 9)
	b = append(b, "PXEClient"...)
	b = append(b, 50, 4, 10, 77, 0, 100, 255)
	p, ok := parseDHCP(b)
	require.True(t, ok)
	assert.Equal(t, byte(1), p.msgType)
	assert.Equal(t, "52:54:00:12:34:56", p.mac.String())
	assert.Equal(t, "PXEClient", p.vendorClass)
	assert.Equal(t, "10.77.0.100", p.requestedIP.String())

	_, ok = parseDHCP(b[:100])
	assert.False(t, ok, "short packet")
	b[0] = 2
	_, ok = parseDHCP(b)
	assert.False(t, ok, "BOOTREPLY")
}

func TestStripANSIAndSanitize(t *testing.T) {
	assert.Equal(t, "GNU GRUB  version 2.06\n", stripANSI("\x1b[0m\x1b[30m\x1b[47mGNU GRUB  version 2.06\r\n"))
	assert.Equal(t, "TestX_uefi_http", sanitize("TestX/uefi http"))
}

func TestFillVMConfig(t *testing.T) {
	t.Setenv("PXEKIT_VM_ACCEL", "")
	cfg := VMConfig{MAC: "52-54-00-AA-BB-CC"}
	require.NoError(t, fillVMConfig(&cfg))
	assert.Equal(t, "52:54:00:aa:bb:cc", cfg.MAC)
	assert.Equal(t, UEFI, cfg.Firmware)
	assert.Equal(t, "tcg", cfg.Accel)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-525400aabbcc$`, cfg.UUID)
	assert.Error(t, fillVMConfig(&VMConfig{MAC: "nope"}))
	assert.Error(t, fillVMConfig(&VMConfig{Firmware: BIOS, HTTPBoot: true}))
	assert.Error(t, fillVMConfig(&VMConfig{Accel: "hvf"}))
}

func TestWaitFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = os.WriteFile(path, []byte("one\nstage=answer mac=x\nthree\n"), 0o644)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	line, err := WaitFile(ctx, path, regexp.MustCompile(`stage=answer`))
	require.NoError(t, err)
	assert.Equal(t, "stage=answer mac=x", line)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = WaitFile(ctx2, path, regexp.MustCompile(`never`))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// dhcpSniffer listens on UDP :67 inside the lab (sharing the port with
// another DHCP server, if any) and collects client messages.
type dhcpSniffer struct {
	pkts chan dhcpPacket
}

func sniffDHCP(t *testing.T, lab *Lab) *dhcpSniffer {
	t.Helper()
	var pc net.PacketConn
	err := lab.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		var err error
		pc, err = lc.ListenPacket(context.Background(), "udp4", ":67")
		return err
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	s := &dhcpSniffer{pkts: make(chan dhcpPacket, 64)}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				close(s.pkts)
				return
			}
			if p, ok := parseDHCP(buf[:n]); ok {
				p.at = time.Now()
				select {
				case s.pkts <- p:
				default:
				}
			}
		}
	}()
	return s
}

// wait returns the first message of type msgType from mac.
func (s *dhcpSniffer) wait(ctx context.Context, t *testing.T, mac string, msgType byte) dhcpPacket {
	t.Helper()
	for {
		select {
		case p, ok := <-s.pkts:
			if !ok {
				t.Fatal("DHCP listener closed")
			}
			if p.mac.String() == mac && p.msgType == msgType {
				return p
			}
		case <-ctx.Done():
			t.Fatalf("no DHCP message type %d from %s: %v", msgType, mac, ctx.Err())
		}
	}
}

// TestFirmwareDHCPDiscover boots each firmware on the lab's tap and waits
// for its DHCPDISCOVER: proof that namespace, tap, QEMU, firmware and NIC
// ROM work, without any of the project's servers. Run one VM at a time.
func TestFirmwareDHCPDiscover(t *testing.T) {
	cases := []struct {
		name   string
		cfg    VMConfig
		vendor string
	}{
		{"uefi", VMConfig{Firmware: UEFI}, "PXEClient:Arch:00007:"},
		{"uefi-http", VMConfig{Firmware: UEFI, HTTPBoot: true}, "HTTPClient:Arch:00016:"},
		{"uefi-secureboot", VMConfig{Firmware: UEFISecureBoot}, "PXEClient:Arch:00007:"},
		{"bios", VMConfig{Firmware: BIOS}, "PXEClient:Arch:00000:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lab := NewLab(t, LabConfig{})
			sniff := sniffDHCP(t, lab)
			vm := lab.Boot(t, tc.cfg)
			// Typically 3-20 s; the bound allows for a host loaded by
			// other jobs (TCG competes for the same cores).
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			p := sniff.wait(ctx, t, vm.MAC(), 1)
			t.Logf("DHCPDISCOVER after %.1fs, option 60 %q", vm.Mark("discover").Seconds(), p.vendorClass)
			assert.True(t, strings.HasPrefix(p.vendorClass, tc.vendor), "option 60 %q, want prefix %q", p.vendorClass, tc.vendor)

			if tc.name == "uefi" {
				// Screen capture and reset work and the firmware
				// starts over: another DISCOVER after the reset.
				shot := filepath.Join(lab.OutDir(), "screen.png")
				require.NoError(t, vm.Screenshot(shot))
				png, err := os.ReadFile(shot)
				require.NoError(t, err)
				assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "screendump is not a PNG")
				require.NoError(t, vm.Reboot())
				reset := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
				defer cancel()
				for {
					p := sniff.wait(ctx, t, vm.MAC(), 1)
					if p.at.After(reset.Add(time.Second)) {
						break
					}
				}
				t.Logf("DHCPDISCOVER again %.1fs after the reset", time.Since(reset).Seconds())
			}
		})
	}
}

// TestSecondDHCPServer runs udhcpd in the lab and checks that a firmware
// client takes its address (the iPXE ROM requests the offered lease), so
// proxyDHCP scenarios have a real "existing DHCP server" to sit beside.
func TestSecondDHCPServer(t *testing.T) {
	lab := NewLab(t, LabConfig{})
	sniff := sniffDHCP(t, lab)
	dhcpd := lab.StartDHCPServer(t, "udhcpd", DHCPServerConfig{})
	time.Sleep(300 * time.Millisecond)
	if done, err := dhcpd.Exited(); done {
		data, _ := os.ReadFile(dhcpd.LogPath())
		t.Fatalf("udhcpd exited: %v: %s", err, data)
	}
	vm := lab.Boot(t, VMConfig{Firmware: BIOS})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	req := sniff.wait(ctx, t, vm.MAC(), 3)
	t.Logf("DHCPREQUEST for %s after %.1fs", req.requestedIP, vm.Mark("request").Seconds())
	if req.requestedIP != nil {
		assert.True(t, lab.Prefix().Masked().Contains(netipFrom(req.requestedIP)), "requested %s", req.requestedIP)
	}
}

func netipFrom(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}
