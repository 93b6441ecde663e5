package progress

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const arpTable = `IP address       HW type     Flags       HW address            Mask     Device
10.77.0.50       0x1         0x2         52:54:00:aa:bb:cc     *        tap0
10.77.0.51       0x1         0x0         00:00:00:00:00:00     *        tap0
`

func newTestTracker(buf *bytes.Buffer) *Tracker {
	tr := New(slog.New(slog.NewTextHandler(buf, nil)))
	tr.neighbours = func() io.ReadCloser { return io.NopCloser(strings.NewReader(arpTable)) }
	return tr
}

func TestMACFromDHCPThenNeighbours(t *testing.T) {
	var buf bytes.Buffer
	tr := newTestTracker(&buf)
	tr.Bind("52-54-00-12-34-56", netip.MustParseAddr("10.77.0.10"))
	assert.Equal(t, "52:54:00:12:34:56", tr.MAC(netip.MustParseAddr("10.77.0.10")))
	assert.Equal(t, "52:54:00:aa:bb:cc", tr.MAC(netip.MustParseAddr("10.77.0.50")))
	assert.Equal(t, Unknown, tr.MAC(netip.MustParseAddr("10.77.0.51")), "incomplete neighbour entry")
	assert.Equal(t, Unknown, tr.MAC(netip.MustParseAddr("10.77.0.99")))
}

func TestObserveLogsStageAndMAC(t *testing.T) {
	var buf bytes.Buffer
	tr := newTestTracker(&buf)
	ctx := context.Background()
	tr.Bind("52:54:00:12:34:56", netip.MustParseAddr("10.77.0.10"))
	tr.ObserveIP(ctx, netip.MustParseAddr("10.77.0.10"), Kernel, "linux")
	tr.Observe(ctx, "not a mac", DHCP, "")
	out := buf.String()
	assert.Contains(t, out, "stage=kernel mac=52:54:00:12:34:56")
	assert.Contains(t, out, "stage=dhcp mac=unknown")
	hosts := tr.Hosts()
	require.Len(t, hosts, 2)
	assert.Equal(t, Kernel, hosts[0].Last().Stage)
	assert.Equal(t, "linux", hosts[0].Last().Detail)
}
