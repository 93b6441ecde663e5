package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuffer writes from many goroutines while reading (run with -race):
// every write arrives whole.
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "w%d.%d\n", i, j)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	assert.Len(t, lines, 800)
	assert.Contains(t, lines, "w7.99")
}

func TestFakeNetboot(t *testing.T) {
	dir := FakeNetboot(t, t.TempDir())
	b, err := os.ReadFile(filepath.Join(dir, "debian-installer", "amd64", "linux"))
	require.NoError(t, err)
	assert.Equal(t, "fake kernel", string(b))
	b, err = os.ReadFile(filepath.Join(dir, "debian-installer", "amd64", "initrd.gz"))
	require.NoError(t, err)
	assert.Equal(t, "fake initrd", string(b))
}
