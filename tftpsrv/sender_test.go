package tftpsrv

import (
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAckOfReadAheadBlockIgnored: the sender reads the next window while it
// waits for the current one's ACK. Those blocks are held but not sent, so an
// ACK naming one of them (a confused or hostile client) must not count as
// progress: the server keeps to its window, sends it again on its timeout,
// and moves on only with an ACK of a block it did send.
func TestAckOfReadAheadBlockIgnored(t *testing.T) {
	const blksize = 512
	data := randomBytes(t, blksize*40)
	dir := testTree(t, map[string][]byte{"f": data})
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir))}, "udp4")

	for _, tc := range []struct {
		name   string
		window int
	}{
		{"lock-step", 1},
		{"window 4", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawClient(t, addr)
			defer c.conn.Close()
			c.request(opRRQ, "f", "blksize", strconv.Itoa(blksize), "windowsize", strconv.Itoa(tc.window))
			p := c.recv(3 * time.Second)
			require.Equal(t, opOACK, opOf(p))
			c.ack(0)
			block := func(p []byte) uint16 {
				t.Helper()
				require.Equal(t, opDATA, opOf(p))
				return binary.BigEndian.Uint16(p[2:])
			}
			for i := 1; i <= tc.window; i++ {
				require.Equal(t, uint16(i), block(c.recv(3*time.Second)))
			}
			// Blocks window+1 … 2×window are read ahead by now; ACK
			// one of them.
			c.ack(uint16(tc.window + 1))
			// The window again, from its first block, after the
			// server's retransmission timeout.
			require.Equal(t, uint16(1), block(c.recv(3*time.Second)))
			for i := 2; i <= tc.window; i++ {
				require.Equal(t, uint16(i), block(c.recv(3*time.Second)))
			}
			// A proper ACK moves the window on, with the right data.
			c.ack(uint16(tc.window))
			p = c.recv(3 * time.Second)
			require.Equal(t, uint16(tc.window+1), block(p))
			assert.Equal(t, data[tc.window*blksize:(tc.window+1)*blksize], p[4:])
			c.sendError(ErrCodeNotDefined, "done")
		})
	}
}

// slowSecondRead returns its data in two Reads, the second one late.
type slowSecondRead struct {
	data  []byte
	first int
	delay time.Duration
	reads int
}

func (r *slowSecondRead) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.reads++
	n := len(r.data)
	if r.reads == 1 {
		n = r.first
	} else {
		time.Sleep(r.delay)
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// TestSlowReadAheadNoSpuriousResend: the read ahead of the next window
// happens while the client's ACK is on its way. When that read takes longer
// than the retransmission timeout, the ACK that arrived meanwhile must be
// taken, not answered by sending the window again.
func TestSlowReadAheadNoSpuriousResend(t *testing.T) {
	const blksize, window = 512, 2
	data := randomBytes(t, blksize*6)
	addr := startServer(t, &Server{Handler: HandlerFunc(func(w ResponseWriter, r *Request) {
		// The first window comes at once; the read of the next one
		// (read ahead) takes 3× the 100 ms floor of the timeout.
		w.ServeContent(&slowSecondRead{data: data, first: blksize * window, delay: 300 * time.Millisecond}, -1)
	})}, "udp4")
	c := newRawClient(t, addr)
	defer c.conn.Close()
	c.request(opRRQ, "f", "blksize", strconv.Itoa(blksize), "windowsize", strconv.Itoa(window))
	p := c.recv(3 * time.Second)
	require.Equal(t, opOACK, opOf(p))
	c.ack(0)
	var blocks []uint16
	for {
		p := c.recv(3 * time.Second)
		require.NotNil(t, p, "after blocks %v", blocks)
		require.Equal(t, opDATA, opOf(p))
		blk := binary.BigEndian.Uint16(p[2:])
		blocks = append(blocks, blk)
		if len(p)-4 < blksize {
			c.ack(blk)
			break
		}
		if blk%window == 0 {
			c.ack(blk)
		}
	}
	assert.Equal(t, []uint16{1, 2, 3, 4, 5, 6, 7}, blocks, "each block sent once")
}
