package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-iso", "x.iso"}, ""},
		{[]string{"-os", "debian-12", "-netboot", "/nb"}, ""},
		{[]string{"-dhcp", "off", "-root", "."}, ""},
		{[]string{"-dhcp", "server", "-iso", "x.iso"}, `-dhcp "server"`},
		{[]string{"-dhcp", "full", "-iso", "x.iso"}, "-pool"},
		{[]string{"-layout", "zfs", "-iso", "x.iso"}, `-layout "zfs"`},
		{[]string{"-os", "windows-11"}, "known: "},
		{[]string{"-iso", "x.iso", "extra"}, "unexpected argument"},
		{[]string{"-iso", "x.iso", "-args", "nomodeset vga=791"}, ""},
		{[]string{"-iso", "x.iso", "-args", `a="b c"`}, "-args"},
		{[]string{"-iso", "x.iso", "-dns", "10.0.0.1,nope"}, `-dns "nope"`},
	} {
		c, err := parseFlags(tc.args, &bytes.Buffer{})
		if tc.err == "" {
			require.NoError(t, err, "%v", tc.args)
			assert.NotEmpty(t, c.dhcpMode)
			continue
		}
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.err, "%v", tc.args)
	}
}

// TestFrontDoor: no flags serve Debian 12 from its netboot package, or
// say how to get it.
func TestFrontDoor(t *testing.T) {
	c, err := parseFlags(nil, &bytes.Buffer{})
	if _, statErr := os.Stat(debianNetboot); statErr != nil {
		require.ErrorContains(t, err, "apt-get install debian-installer-12-netboot-amd64")
		assert.ErrorContains(t, err, "-iso FILE")
		return
	}
	require.NoError(t, err)
	assert.Equal(t, "debian-12", c.osID)
	assert.Equal(t, debianNetboot, c.netboot)
	assert.True(t, c.frontDoor)
}

func TestRunServesDirectoryWithoutRootOrDHCP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-dhcp", "off", "-root", t.TempDir(), "-tftp-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}, &out, &errb)
	}()
	cancel()
	assert.Equal(t, 0, <-done, errb.String())
}
