package tftpsrv

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReadAheadSize(t *testing.T) {
	for _, tc := range []struct{ blksize, window, want int }{
		{512, 1, 8 << 10},
		{1024, 1, 8 << 10},
		{1468, 1, 8 << 10},
		{1468, 4, 16 << 10},
		{1468, 16, 32 << 10},
		{8192, 1, 16 << 10},
		{65464, 64, 32 << 10},
	} {
		assert.Equal(t, tc.want, readAheadSize(tc.blksize, tc.window), "blksize %d window %d", tc.blksize, tc.window)
	}
}

// TestBufPoolSizes checks that a buffer handed out is never much larger
// than asked for, whatever was returned to the pool before.
func TestBufPoolSizes(t *testing.T) {
	var p bufPool
	for _, n := range []int{80 << 10, 2056, 11776, 2056, 1, 4096, 4097, 2056} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			bp := p.get(n)
			assert.Len(t, *bp, n)
			assert.LessOrEqual(t, cap(*bp), 2*n)
			p.put(bp)
		})
	}
}

func TestReaderPoolSizes(t *testing.T) {
	var p readerPool
	for _, n := range []int{32 << 10, 8 << 10, 16 << 10, 8 << 10} {
		br := p.get(n)
		assert.Equal(t, n, br.Size())
		br.Reset(nil)
		p.put(br)
	}
}
