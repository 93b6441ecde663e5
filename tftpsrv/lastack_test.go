package tftpsrv

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A file whose size is a multiple of the block size ends with an empty
// DATA block. A client that knows the size (tsize) may stop as soon as it
// has acknowledged the last full block and never acknowledge the empty one:
// GRUB does when the file is the last before it boots (seen with Debian's
// arm64 GRUB and the installer's initrd). It has every byte: the transfer
// is served. A client that stops before acknowledging the last full block
// may lack it: that is still ErrTimeout.
func TestUnacknowledgedEmptyLastBlock(t *testing.T) {
	const blk, blocks = 1024, 4
	dir := testTree(t, map[string][]byte{"initrd": randomBytes(t, blk*blocks)})
	for _, eng := range engines {
		for _, tc := range []struct {
			name     string
			lastAck  uint16 // the last block the client acknowledges
			wantErr  error
			wantSent int64
		}{
			{"every byte acknowledged", blocks, nil, blk * blocks},
			{"last full block unacknowledged", blocks - 1, ErrTimeout, blk * (blocks - 1)},
		} {
			t.Run(eng.name+"/"+tc.name, func(t *testing.T) {
				addr, ends := startEndsServer(t, dir)
				c := newRawClient(t, addr)
				c.request(opRRQ, "initrd", append([]string{"tsize", "0"}, eng.opts...)...)
				require.Equal(t, opOACK, opOf(c.recv(3*time.Second)))
				c.ack(0)
				windowed := len(eng.opts) > 2
				for acked := uint16(0); acked < tc.lastAck; {
					p := c.recv(3 * time.Second)
					require.NotNil(t, p, "no DATA after block %d", acked)
					if opOf(p) != opDATA {
						continue
					}
					b := binary.BigEndian.Uint16(p[2:4])
					if b != acked+1 || b > tc.lastAck {
						continue // a resend, or what the client no longer takes
					}
					if !windowed || b == tc.lastAck {
						c.ack(b)
					}
					acked = b
				}
				// The client has what it wanted and goes quiet.
				select {
				case e := <-ends:
					if tc.wantErr == nil {
						assert.NoError(t, e.Err)
						assert.True(t, e.Served())
					} else {
						assert.ErrorIs(t, e.Err, tc.wantErr)
						assert.False(t, e.Served())
					}
					assert.Equal(t, int64(blk*blocks), e.Size)
					if tc.wantErr == nil || !windowed { // a windowed sender counts acknowledged bytes only
						assert.LessOrEqual(t, tc.wantSent, e.Bytes)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the transfer did not end")
				}
			})
		}
	}
}

// An empty file is its empty block: a client that never acknowledges it
// has not confirmed anything.
func TestUnacknowledgedEmptyFile(t *testing.T) {
	dir := testTree(t, map[string][]byte{"empty": {}})
	addr, ends := startEndsServer(t, dir)
	c := newRawClient(t, addr)
	c.request(opRRQ, "empty", "tsize", "0", "blksize", "1024")
	require.Equal(t, opOACK, opOf(c.recv(3*time.Second)))
	c.ack(0)
	require.Equal(t, opDATA, opOf(c.recv(3*time.Second)))
	select {
	case e := <-ends:
		assert.ErrorIs(t, e.Err, ErrTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("the transfer did not end")
	}
}

// startEndsServer serves dir with a short give-up time (100 ms × 3) and
// passes on the transfers' end events.
func startEndsServer(t *testing.T, dir string) (string, <-chan Event) {
	t.Helper()
	ends := make(chan Event, 1)
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Timeout: 100 * time.Millisecond, Retries: 2,
		OnEvent: func(e Event) {
			if e.Kind == TransferEnd {
				ends <- e
			}
		}}, "udp4")
	return addr, ends
}
