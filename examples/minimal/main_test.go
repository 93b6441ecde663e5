package main

import (
	"bytes"
	"context"
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
		{[]string{}, "nothing to serve"},
		{[]string{"-iso", "x.iso", "extra"}, "unexpected argument"},
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
