package tftpsrv

import (
	"bufio"
	"math/bits"
	"sync"
)

// bufPool reuses byte buffers across transfers, one sync.Pool per power of
// two of capacity, so that a transfer is never handed a buffer much larger
// than it needs: with a single pool, a lock-step transfer needing 2 KiB
// could keep, for its whole length, the 80 KiB ring of an earlier windowed
// one.
type bufPool struct {
	classes [bits.UintSize]sync.Pool // *[]byte with cap in (2^(i-1), 2^i]
}

// get returns a buffer of length n (n > 0).
func (p *bufPool) get(n int) *[]byte {
	if bp, _ := p.classes[bits.Len(uint(n-1))].Get().(*[]byte); bp != nil && cap(*bp) >= n {
		*bp = (*bp)[:n]
		return bp
	}
	// A smaller buffer of the same class is dropped, not put back: the
	// sizes a server sees repeat, so this is rare.
	b := make([]byte, n)
	return &b
}

// put makes bp reusable.
func (p *bufPool) put(bp *[]byte) {
	if c := cap(*bp); c > 0 {
		p.classes[bits.Len(uint(c-1))].Put(bp)
	}
}

// readerPool reuses bufio.Readers of the sizes readAheadSize returns.
type readerPool struct {
	sizes [bits.UintSize]sync.Pool // *bufio.Reader of Size 2^i
}

// get returns a reader of size n (a power of two), reading nothing yet.
func (p *readerPool) get(n int) *bufio.Reader {
	if br, _ := p.sizes[bits.Len(uint(n-1))].Get().(*bufio.Reader); br != nil && br.Size() == n {
		return br
	}
	return bufio.NewReaderSize(nil, n)
}

// put makes br reusable; the caller has Reset it to nil.
func (p *readerPool) put(br *bufio.Reader) {
	p.sizes[bits.Len(uint(br.Size()-1))].Put(br)
}
