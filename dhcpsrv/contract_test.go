package dhcpsrv_test

import (
	"path/filepath"
	"testing"

	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/dhcpsrv/leasestoretest"
	"github.com/stretchr/testify/require"
)

func TestMemoryStoreContract(t *testing.T) {
	leasestoretest.Run(t, func(t *testing.T) dhcpsrv.LeaseStore {
		s := dhcpsrv.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestFileStoreContract(t *testing.T) {
	leasestoretest.Run(t, func(t *testing.T) dhcpsrv.LeaseStore {
		s, err := dhcpsrv.OpenFileStore(filepath.Join(t.TempDir(), "leases"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
