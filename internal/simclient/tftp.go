package simclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// TFTP reads files from one TFTP server as a firmware or boot-loader client
// does (RFC 1350, options RFC 2347/2348/2349, windows RFC 7440). The zero
// value is not usable: set Server.
type TFTP struct {
	// Server is where read requests go (the transfer continues from
	// whatever port the server answers from).
	Server netip.AddrPort
	// Local is the address requests are sent from; a replying packet from
	// any other address than Server's is ignored. Default: the
	// unspecified address of Server's family.
	Local netip.Addr
	// Timeout is how long a silence lasts before the last packet is sent
	// again. Default 2 s.
	Timeout time.Duration
	// Retries is how many timeouts in a row end a read. Default 6.
	Retries int
	// RX and TX, when set, count the UDP payload bytes received and sent.
	RX, TX *atomic.Int64
	// Loss, when set, is asked before each ACK is sent and after each
	// packet is received, and loses it when it reports true: a lossy
	// network for tests. Called from the reading goroutine only.
	Loss func() bool
}

// TFTPOptions are the options of one read request.
type TFTPOptions struct {
	// BlockSize asks for blksize; 0 asks nothing (512-byte blocks).
	BlockSize int
	// WindowSize asks for windowsize; 0 asks nothing (lock-step).
	WindowSize int
	// TSize asks the server for the file's size.
	TSize bool
	// Probe is EDK2's size probe: the read ends with an ERROR right after
	// the server's OACK (or its first DATA, when it refuses options).
	Probe bool
	// Extra are further options as name, value pairs ("timeout", "1"),
	// sent after the ones above.
	Extra []string
}

// TFTPResult is what one read learned.
type TFTPResult struct {
	// Size is the number of bytes received (0 for a probe).
	Size int64
	// TSize is the size the server announced; -1 when it gave none.
	TSize int64
	// CRC is the CRC-32C (Castagnoli) of the bytes received.
	CRC uint32
	// OACK holds the options the server acknowledged, keys lower-cased;
	// nil when it sent no OACK.
	OACK map[string]string
}

// TFTP opcodes.
const (
	tftpRRQ   = 1
	tftpDATA  = 3
	tftpACK   = 4
	tftpERROR = 5
	tftpOACK  = 6
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Read reads name and writes its content to w (nil discards it). It
// acknowledges once per window (the window's last block in order, or the
// last in-order block after a gap, once per gap), resends its last packet
// on a timeout, and returns an error wrapping the server's message on a
// TFTP ERROR.
func (c *TFTP) Read(ctx context.Context, name string, o TFTPOptions, w io.Writer) (TFTPResult, error) {
	res := TFTPResult{TSize: -1}
	if !c.Server.IsValid() {
		return res, errors.New("simclient: TFTP.Server not set")
	}
	if w == nil {
		w = io.Discard
	}
	timeout, retries := c.Timeout, c.Retries
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if retries <= 0 {
		retries = 6
	}
	network, local := "udp4", c.Local
	if c.Server.Addr().Is6() && !c.Server.Addr().Is4In6() {
		network = "udp6"
	}
	la := &net.UDPAddr{}
	if local.IsValid() {
		la.IP = local.AsSlice()
	}
	conn, err := net.ListenUDP(network, la)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	count := func(ctr *atomic.Int64, n int) {
		if ctr != nil {
			ctr.Add(int64(n))
		}
	}

	rrq := binary.BigEndian.AppendUint16(nil, tftpRRQ)
	rrq = append(append(append(rrq, name...), 0), "octet\x00"...)
	opt := func(k, v string) { rrq = append(append(append(append(rrq, k...), 0), v...), 0) }
	if o.TSize {
		opt("tsize", "0")
	}
	if o.BlockSize > 0 {
		opt("blksize", strconv.Itoa(o.BlockSize))
	}
	if o.WindowSize > 0 {
		opt("windowsize", strconv.Itoa(o.WindowSize))
	}
	for i := 0; i+1 < len(o.Extra); i += 2 {
		opt(o.Extra[i], o.Extra[i+1])
	}
	srv := net.UDPAddrFromAddrPort(c.Server)
	var peer *net.UDPAddr // the server's transfer port, once it answered
	blksize, window := 512, 1
	expect := uint16(1)  // next block wanted
	lastAck := uint16(0) // last block acknowledged
	gapAcked := false    // a gap was acknowledged since the last in-order block
	dupAcked := false    // an old block was answered since the last in-order block
	send := func(p []byte, to *net.UDPAddr) error {
		_, err := conn.WriteToUDP(p, to)
		count(c.TX, len(p))
		if err != nil && ctx.Err() != nil {
			return ctx.Err() // the deadline AfterFunc set
		}
		return err
	}
	ack := func(block uint16) error {
		p := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tftpACK), block)
		lastAck = block
		if c.Loss != nil && c.Loss() {
			return nil
		}
		return send(p, peer)
	}
	endProbe := func() {
		p := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tftpERROR), 8)
		_ = send(append(p, "size probe\x00"...), peer)
	}
	if err := send(rrq, srv); err != nil {
		return res, err
	}
	buf := make([]byte, 65536)
	timeouts := 0
	for {
		// Deadline first, then the context: a cancellation after the
		// check moves the deadline to now (AfterFunc above).
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return res, err
			}
			if timeouts++; timeouts >= retries {
				return res, fmt.Errorf("tftp %s: timed out after block %d", name, expect-1)
			}
			// Silence: acknowledge the last block received in order
			// (RFC 7440), so that a lost tail of a window or a lost
			// ACK is made good; before any answer, ask again.
			if peer == nil {
				err = send(rrq, srv)
			} else {
				err = ack(expect - 1)
			}
			if err != nil {
				return res, err
			}
			continue
		}
		count(c.RX, n)
		if c.Loss != nil && c.Loss() {
			continue
		}
		fromAddr := from.AddrPort().Addr().Unmap()
		if n < 4 || fromAddr != c.Server.Addr().Unmap() || (peer != nil && from.Port != peer.Port) {
			continue
		}
		op, arg := binary.BigEndian.Uint16(buf), binary.BigEndian.Uint16(buf[2:])
		if peer == nil {
			peer = from
		}
		switch op {
		case tftpERROR:
			return res, fmt.Errorf("tftp %s: server error %d: %s", name, arg, strings.TrimRight(string(buf[4:n]), "\x00"))
		case tftpOACK:
			if expect != 1 {
				continue // a duplicate
			}
			res.OACK = map[string]string{}
			f := strings.Split(strings.TrimRight(string(buf[2:n]), "\x00"), "\x00")
			for i := 0; i+1 < len(f); i += 2 {
				k := strings.ToLower(f[i])
				res.OACK[k] = f[i+1]
				v, _ := strconv.Atoi(f[i+1])
				switch k {
				case "blksize":
					blksize = v
				case "windowsize":
					window = max(v, 1)
				case "tsize":
					res.TSize = int64(v)
				}
			}
			if o.Probe {
				endProbe()
				return res, nil
			}
			timeouts = 0
			if err := ack(0); err != nil {
				return res, err
			}
		case tftpDATA:
			if o.Probe {
				// Options refused: no size to learn; end as EDK2 would.
				endProbe()
				return res, nil
			}
			data := buf[4:n]
			switch {
			case arg == expect:
				timeouts, gapAcked, dupAcked = 0, false, false
				if _, err := w.Write(data); err != nil {
					return res, err
				}
				res.CRC = crc32.Update(res.CRC, castagnoli, data)
				res.Size += int64(len(data))
				expect++
				if len(data) < blksize {
					_ = ack(arg)
					return res, nil
				}
				if arg-lastAck >= uint16(window) {
					if err := ack(arg); err != nil {
						return res, err
					}
				}
			case arg-expect < 0x8000 && !gapAcked:
				// Ahead of what is wanted: a block was lost. Ask the
				// window again from the last in-order block, once.
				gapAcked = true
				if err := ack(expect - 1); err != nil {
					return res, err
				}
			case expect-arg < 0x8000 && !dupAcked:
				// An old block again: the server missed an ACK and
				// resent. Acknowledge what arrived, once.
				dupAcked = true
				if err := ack(expect - 1); err != nil {
					return res, err
				}
			}
		}
	}
}
