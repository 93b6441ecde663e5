package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
)

func TestSyslogMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// d-i's busybox syslogd -R: RFC 3164.
		{"<13>Nov 24 00:01:02 main-menu[301]: INFO: Menu item 'netcfg' selected", "Nov 24 00:01:02 main-menu[301]: INFO: Menu item 'netcfg' selected"},
		// anaconda's rsyslog forwarding: RFC 5424, with and without structured data.
		{"<30>1 2026-11-24T00:01:02Z host anaconda 1234 - - Installing bash-5.1", "anaconda: Installing bash-5.1"},
		{`<30>1 2026-11-24T00:01:02Z host dnf 99 ID [x@1 a="b"] Downloading`, "dnf: Downloading"},
		{"no priority at all", "no priority at all"},
		{"<13>with\x1b[31m escape\x00 and\ttab", "with[31m escape andtab"},
		{"<13>", ""},
		{"<13>" + strings.Repeat("x", 500), strings.Repeat("x", 160)},
	} {
		assert.Equal(t, tc.want, syslogMessage([]byte(tc.in)), "%q", tc.in)
	}
}

func FuzzSyslogMessage(f *testing.F) {
	f.Add([]byte("<13>Nov 24 00:01:02 main-menu[301]: INFO: x"))
	f.Add([]byte("<30>1 2026-11-24T00:01:02Z host app 1 - [a] b"))
	f.Add([]byte("<>1 "))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := syslogMessage(b)
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b\n\r") || len(s) > 160+utf8.UTFMax {
			t.Fatalf("syslogMessage(%q) = %q", b, s)
		}
	})
}

// The installers' kernel lines name the receiver (bootmenu's
// InstallInput.Syslog), and none without it.
func TestSyslogOnKernelLine(t *testing.T) {
	f, _ := newTestFleet(t, UnknownLocal, false, func(o *buildOptions) { o.Syslog = netip.MustParseAddrPort("10.0.0.1:5514") })
	out, _, err := f.menu(mustMAC(t, macWeb), bootmenu.PXELinux)
	require.NoError(t, err)
	assert.Contains(t, string(out), " log_host=10.0.0.1 log_port=5514")
	f, _ = newTestFleet(t, UnknownLocal, false)
	out, _, err = f.menu(mustMAC(t, macWeb), bootmenu.PXELinux)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "log_host")
}

// Installer log lines become the installing stage only once the host has
// its answer file, and only the first one is a step: an install logs
// thousands of lines.
func TestSyslogReceiver(t *testing.T) {
	f, _ := newTestFleet(t, UnknownLocal, false)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.serveSyslog(ctx, conn) }()
	defer func() {
		cancel()
		conn.Close()
		require.NoError(t, <-done)
	}()

	mac, _ := net.ParseMAC(macWeb)
	f.bindings.Bind(mac, netip.MustParseAddr("127.0.0.1"))
	send := func(msg string) {
		c, err := net.Dial("udp", conn.LocalAddr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte(msg))
		require.NoError(t, err)
	}
	lineSeen := func(text string) func() bool {
		return func() bool { ln, ok := f.installLog.get(macWeb); return ok && ln.Text == text }
	}
	send("<13>early: kernel booted")
	require.Eventually(t, lineSeen("early: kernel booted"), 5*time.Second, 10*time.Millisecond)
	last, _ := f.steps.last(macWeb)
	assert.NotEqual(t, StageInstalling, last.Stage, "before the answer file it is not installing")

	f.gate.AnswerServed(mac, "web01")
	send("<13>pkgsel: installing")
	require.Eventually(t, lineSeen("pkgsel: installing"), 5*time.Second, 10*time.Millisecond)
	send("<13>pkgsel: more")
	require.Eventually(t, lineSeen("pkgsel: more"), 5*time.Second, 10*time.Millisecond)
	n := 0
	for _, s := range f.steps.all()[macWeb].Steps {
		if s.Stage == StageInstalling {
			n++
		}
	}
	assert.Equal(t, 1, n, "one installing step, however many lines")
	st := f.status()
	for _, h := range st.Hosts {
		if h.MAC == macWeb {
			assert.Equal(t, StageInstalling, h.Stage)
			assert.Equal(t, "syslog: pkgsel: more", h.Detail, "the status shows the latest line")
		}
	}
}

func FuzzParseInventory(f *testing.F) {
	f.Add([]byte(testInventory("nb", UnknownMenu)))
	f.Add([]byte("hosts: [{mac: x}]\nprofiles: {a: {os: debian-12, netboot: nb}}"))
	f.Add([]byte("unknown: [1, 2]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseInventory(data, t.TempDir())
		if err == nil && inv == nil {
			t.Fatal("nil inventory without an error")
		}
	})
}
