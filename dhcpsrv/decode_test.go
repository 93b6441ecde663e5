package dhcpsrv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/require"
)

// decodeSeeds are the recorded packets plus hand-made edge cases: repeated
// and empty options, a missing end, a truncated option, a long MAC length.
func decodeSeeds(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "packets", "*.bin"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var seeds [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		seeds = append(seeds, b)
	}
	base := plainDiscover(mustMAC("02:00:00:00:00:01")).ToBytes()
	opts := func(o ...byte) []byte { return append(append([]byte(nil), base[:bootpFixed]...), o...) }
	long := append([]byte(nil), base...)
	long[2] = 40 // hlen above 16
	seeds = append(seeds,
		opts(53, 1, 1, 255),
		opts(53, 1, 1, 12, 2, 'a', 'b', 12, 1, 'c', 255),       // RFC 3396 concatenation
		opts(53, 1, 1, 12, 0, 12, 2, 'x', 'y', 60, 0, 255),     // empty, then non-empty
		opts(53, 1, 1, 12, 3, 'a', 'b', 'c', 12, 0, 0, 0, 255), // non-empty, then empty, pads
		opts(53, 1, 1),           // no end
		opts(53, 1, 1, 12),       // code without length
		opts(53, 1, 1, 12, 5, 1), // truncated value
		opts(255, 53, 1, 1),      // end first, trailing bytes
		opts(),
		base[:bootpFixed-1],
		long,
		nil,
	)
	return seeds
}

// checkDecode requires decode to agree with dhcpv4.FromBytes on b.
func checkDecode(t *testing.T, b []byte) {
	want, werr := dhcpv4.FromBytes(b)
	got, gerr := decode(b)
	if werr != nil {
		require.Error(t, gerr, "FromBytes refuses %x: %v", b, werr)
		return
	}
	require.NoError(t, gerr)
	require.Equal(t, want, got)
	// The message owns its bytes: the receive buffer is reused.
	for i := range b {
		b[i] ^= 0xff
	}
	require.Equal(t, want, got)
}

func TestDecodeMatchesCodec(t *testing.T) {
	for _, b := range decodeSeeds(t) {
		checkDecode(t, append([]byte(nil), b...))
	}
}

func FuzzDecodeMatchesCodec(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkDecode)
}
