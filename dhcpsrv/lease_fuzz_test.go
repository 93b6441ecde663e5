package dhcpsrv

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzLeaseJSON feeds arbitrary records to the lease decoder, which reads
// the lease file and, in dhcpsrv/etcdstore, values any etcd client could
// have written: an error or a lease that survives a round trip, never a
// panic.
func FuzzLeaseJSON(f *testing.F) {
	f.Add([]byte(`{"ip":"10.77.0.100","mac":"52:54:00:12:34:56","hostname":"n1","expiry":"2026-01-02T03:04:05Z","state":"bound"}`))
	f.Add([]byte(`{"ip":"10.77.0.101","expiry":"2026-01-02T03:04:05.5+01:00","state":"declined"}`))
	f.Add([]byte(`{"ip":"::1","state":"bound"}`))
	f.Add([]byte(`{"ip":"10.0.0.1","mac":"zz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Lease
		if err := json.Unmarshal(b, &l); err != nil {
			return
		}
		out, err := json.Marshal(l)
		if err != nil {
			return // e.g. an expiry beyond year 9999
		}
		var back Lease
		require.NoError(t, json.Unmarshal(out, &back), "%s", out)
		require.Equal(t, l.IP, back.IP)
		require.Equal(t, l.MAC.String(), back.MAC.String())
		require.True(t, l.Expiry.Equal(back.Expiry))
		require.Equal(t, l.State, back.State)
		require.Equal(t, l.Hostname, back.Hostname)
	})
}
