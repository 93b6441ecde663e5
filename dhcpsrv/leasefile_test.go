package dhcpsrv

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fileLease(i int) Lease {
	return Lease{IP: addrU32(0x0a000000 + uint32(i)), MAC: mustMAC(fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)),
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), State: LeaseBound}
}

// putAll stores n leases concurrently (so they share group commits) and
// fails the test on any error.
func putAll(t *testing.T, st *FileStore, from, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := from; i < from+n; i++ {
		wg.Add(1)
		st.putAsync(fileLease(i), func(err error) { errs <- err; wg.Done() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func loadedIPs(t *testing.T, path string) map[netip.Addr]Lease {
	t.Helper()
	st, err := OpenFileStore(path)
	require.NoError(t, err)
	defer st.Close()
	leases, err := st.Load(context.Background())
	require.NoError(t, err)
	m := map[netip.Addr]Lease{}
	for _, l := range leases {
		m[l.IP] = l
	}
	return m
}

// TestFileStoreZerosAhead checks the layout of the log: zeros written
// ahead while the store is open, a file of plain JSON lines after Close.
func TestFileStoreZerosAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	st, err := OpenFileStore(path)
	require.NoError(t, err)
	putAll(t, st, 0, 3)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(b), preallocate, "zeros written ahead")
	data := b[:bytes.IndexByte(b, 0)]
	assert.Equal(t, 3, bytes.Count(data, []byte("\n")))
	assert.Empty(t, bytes.Trim(b[len(data):], "\x00"), "nothing but zeros after the records")

	require.NoError(t, st.Close())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, data, b, "Close leaves the records and nothing else")
	assert.Len(t, loadedIPs(t, path), 3)
}

// TestFileStoreOpenAfterCrash opens a copy of the log taken while the store
// was open, zeros included, as a crash would leave it: every lease whose
// Put returned is there. A torn record before the zeros is ignored.
func TestFileStoreOpenAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "leases")
	st, err := OpenFileStore(path)
	require.NoError(t, err)
	defer st.Close()
	putAll(t, st, 0, 100)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	end := bytes.IndexByte(b, 0)
	require.Positive(t, end)

	crashed := filepath.Join(dir, "crashed")
	require.NoError(t, os.WriteFile(crashed, b, 0o644))
	got := loadedIPs(t, crashed)
	assert.Len(t, got, 100)
	assert.Equal(t, fileLease(42).MAC, got[fileLease(42).IP].MAC)

	// A write cut short by the crash: half a record, then the zeros.
	torn := append(append([]byte{}, b[:end]...), `{"ip":"10.9.9.9","mac":"02:0`...)
	torn = append(torn, make([]byte, 4096)...)
	require.NoError(t, os.WriteFile(crashed, torn, 0o644))
	got = loadedIPs(t, crashed)
	assert.Len(t, got, 100)
	assert.NotContains(t, got, netip.MustParseAddr("10.9.9.9"))
}

// TestFileStoreGrowsPastZeros writes more than the zeros written ahead
// hold, so the log is extended while in use, and reads everything back.
func TestFileStoreGrowsPastZeros(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases")
	st, err := OpenFileStore(path)
	require.NoError(t, err)
	n := preallocate / 80 // a record is over 80 bytes
	for i := 0; i < n; i += 1000 {
		putAll(t, st, i, min(1000, n-i))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Greater(t, bytes.IndexByte(b, 0), preallocate, "the log outgrew its first zeros")
	require.NoError(t, st.Close())
	got := loadedIPs(t, path)
	require.Len(t, got, n)
	for _, i := range []int{0, n / 2, n - 1} {
		assert.Equal(t, fileLease(i).MAC, got[fileLease(i).IP].MAC)
	}
}

// FuzzLeaseFile opens arbitrary bytes as a lease log: an error or a store,
// never a panic; a store that opens keeps what it loaded across Close and
// a second open (compaction and the cut of the zeros written ahead lose
// nothing).
func FuzzLeaseFile(f *testing.F) {
	rec := `{"ip":"10.77.0.100","mac":"52:54:00:12:34:56","expiry":"2030-01-02T03:04:05Z","state":"bound"}`
	f.Add([]byte(rec + "\n"))
	f.Add([]byte(rec + "\n" + rec[:40]))
	f.Add([]byte(rec + "\n\x00\x00\x00" + rec + "\n"))
	f.Add([]byte("\x00" + rec + "\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "leases")
		require.NoError(t, os.WriteFile(path, b, 0o644))
		st, err := OpenFileStore(path)
		if err != nil {
			return
		}
		first, err := st.Load(context.Background())
		require.NoError(t, err)
		require.NoError(t, st.Close())
		again := loadedIPs(t, path)
		require.Len(t, again, len(first))
		for _, l := range first {
			require.Equal(t, l.MAC.String(), again[l.IP].MAC.String())
			require.True(t, l.Expiry.Equal(again[l.IP].Expiry))
		}
	})
}
