package tftpsrv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want request
		bad  bool
	}{
		{name: "plain", in: []byte("\x00\x01pxelinux.0\x00octet\x00"),
			want: request{op: opRRQ, name: "pxelinux.0", mode: "octet"}},
		{name: "options lower-cased, first wins", in: []byte("\x00\x01f\x00OCTET\x00BlkSize\x001468\x00TSIZE\x000\x00blksize\x00512\x00"),
			want: request{op: opRRQ, name: "f", mode: "octet", opts: []option{{"blksize", "1468"}, {"tsize", "0"}}}},
		{name: "dangling option ignored", in: []byte("\x00\x01f\x00octet\x00tsize\x00"),
			want: request{op: opRRQ, name: "f", mode: "octet"}},
		{name: "write", in: []byte("\x00\x02f\x00netascii\x00"), want: request{op: opWRQ, name: "f", mode: "netascii"}},
		{name: "empty", in: nil, bad: true},
		{name: "ack", in: []byte("\x00\x04\x00\x01"), bad: true},
		{name: "no NUL after mode", in: []byte("\x00\x01f\x00octet"), bad: true},
		{name: "no mode", in: []byte("\x00\x01f\x00"), bad: true},
		{name: "empty mode", in: []byte("\x00\x01f\x00\x00"), bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRequest(tc.in)
			if tc.bad {
				assert.ErrorIs(t, err, errMalformed)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("\x00\x01pxelinux.0\x00octet\x00"))
	f.Add([]byte("\x00\x01/grub/grub.cfg\x00octet\x00blksize\x001024\x00tsize\x000\x00"))
	f.Add([]byte("\x00\x01bootx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00"))
	f.Add([]byte("\x00\x02../x\x00netascii\x00"))
	f.Add([]byte("\x00\x05\x00\x08abort\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			return
		}
		// What parses must survive a round trip and negotiation, and
		// its name must either clean or be refused, never panic.
		again, err := parseRequest(packRequest(r.op, r.name, r.mode, r.opts))
		require.NoError(t, err)
		assert.Equal(t, r.name, again.name)
		assert.Equal(t, r.opts, again.opts)
		n := negotiate(r.opts, optionLimits{maxBlock: 1468, maxWindow: 32, maxTimeout: 6 * time.Second}, 1000)
		assert.GreaterOrEqual(t, n.blksize, minBlockSize)
		assert.LessOrEqual(t, n.blksize, 1468)
		assert.GreaterOrEqual(t, n.windowsize, 1)
		assert.LessOrEqual(t, n.windowsize, 32)
		assert.LessOrEqual(t, n.timeout, 6*time.Second)
		_, _ = CleanName(r.name)
	})
}

func TestNegotiate(t *testing.T) {
	lim := optionLimits{maxBlock: 1468, maxWindow: 32, maxTimeout: 6 * time.Second}
	for _, tc := range []struct {
		name string
		opts []option
		size int64
		want negotiation
	}{
		{"none", nil, 10, negotiation{blksize: 512, windowsize: 1}},
		{"ovmf", []option{{"tsize", "0"}, {"blksize", "1468"}, {"windowsize", "4"}}, 10,
			negotiation{blksize: 1468, windowsize: 4, windowed: true,
				oack: []option{{"tsize", "10"}, {"blksize", "1468"}, {"windowsize", "4"}}}},
		{"tsize unknown size", []option{{"tsize", "0"}}, -1, negotiation{blksize: 512, windowsize: 1}},
		{"blksize capped", []option{{"blksize", "65464"}}, 10,
			negotiation{blksize: 1468, windowsize: 1, oack: []option{{"blksize", "1468"}}}},
		{"blksize too small ignored", []option{{"blksize", "7"}}, 10, negotiation{blksize: 512, windowsize: 1}},
		{"blksize 8", []option{{"blksize", "8"}}, 10,
			negotiation{blksize: 8, windowsize: 1, windowed: true, oack: []option{{"blksize", "8"}}}},
		{"blksize junk", []option{{"blksize", "x"}}, 10, negotiation{blksize: 512, windowsize: 1}},
		{"timeout", []option{{"timeout", "2"}}, 10,
			negotiation{blksize: 512, windowsize: 1, timeout: 2 * time.Second, windowed: true, oack: []option{{"timeout", "2"}}}},
		{"timeout at the cap", []option{{"timeout", "6"}}, 10,
			negotiation{blksize: 512, windowsize: 1, timeout: 6 * time.Second, windowed: true, oack: []option{{"timeout", "6"}}}},
		// RFC 2349 allows no lower counter-offer: the option is declined
		// and the server's own Timeout applies.
		{"timeout above the cap declined", []option{{"timeout", "255"}, {"blksize", "1024"}}, 10,
			negotiation{blksize: 1024, windowsize: 1, oack: []option{{"blksize", "1024"}}}},
		{"timeout out of range", []option{{"timeout", "0"}, {"timeout", "256"}}, 10, negotiation{blksize: 512, windowsize: 1}},
		{"windowsize capped", []option{{"windowsize", "64"}}, 10,
			negotiation{blksize: 512, windowsize: 32, windowed: true, oack: []option{{"windowsize", "32"}}}},
		{"window bytes bounded", []option{{"windowsize", "16"}, {"blksize", "8192"}}, 10,
			negotiation{blksize: 1468, windowsize: 16, windowed: true, oack: []option{{"windowsize", "16"}, {"blksize", "1468"}}}},
		{"windowsize zero ignored", []option{{"windowsize", "0"}}, 10, negotiation{blksize: 512, windowsize: 1}},
		{"unknown", []option{{"multicast", ""}}, 10, negotiation{blksize: 512, windowsize: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, negotiate(tc.opts, lim, tc.size))
		})
	}
}

func TestBlockLimitForMTU(t *testing.T) {
	assert.Equal(t, 1468, blockLimitForMTU(1500, false))
	assert.Equal(t, 1448, blockLimitForMTU(1500, true))
	assert.Equal(t, 1368, blockLimitForMTU(1400, false))
	assert.Equal(t, 65464, blockLimitForMTU(65536, false))
	assert.Equal(t, 512, blockLimitForMTU(300, false))
}

func TestNegotiateWindowBytes(t *testing.T) {
	n := negotiate([]option{{"windowsize", "16"}, {"blksize", "8192"}}, optionLimits{maxBlock: 65464, maxWindow: 32}, 10)
	assert.Equal(t, 8, n.windowsize)
	assert.Equal(t, []option{{"windowsize", "8"}, {"blksize", "8192"}}, n.oack)
	n = negotiate([]option{{"blksize", "65464"}, {"windowsize", "4"}}, optionLimits{maxBlock: 65464, maxWindow: 32}, 10)
	assert.Equal(t, 1, n.windowsize)
}
