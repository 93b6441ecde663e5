package tftpsrv

import (
	"strconv"
	"time"
)

// Option limits from the RFCs.
const (
	minBlockSize  = 8     // RFC 2348
	maxBlockSize  = 65464 // RFC 2348
	defBlockSize  = 512   // RFC 1350
	maxWindowSize = 65535 // RFC 7440
	maxTimeoutSec = 255   // RFC 2349

	// maxWindowBytes bounds windowsize × blksize. A window is sent as one
	// burst; beyond about 64 KiB it overflows a client's default socket
	// receive buffer (measured with atftp at blksize 8192, windowsize 16:
	// the tail of every window was lost and each one cost a timeout).
	maxWindowBytes = 64 << 10
)

// optionLimits is what the server allows for one request.
type optionLimits struct {
	maxBlock   int // ceiling from config and path MTU
	maxWindow  int
	maxTimeout time.Duration // longer timeout options are declined
}

// negotiation is the outcome of option negotiation for one read request.
type negotiation struct {
	blksize    int
	windowsize int
	timeout    time.Duration // 0: the server's default
	oack       []option      // what to acknowledge, in request order; empty: no OACK
	// windowed reports that the client asked for options only this
	// package's own sender implements (windowsize, timeout, blksize < 512).
	windowed bool
}

// negotiate decides the options of a read request, given the content size
// (negative when unknown). Unknown or invalid options are left out of the
// OACK, which RFC 2347 allows; values above the server's limits are lowered.
func negotiate(opts []option, l optionLimits, size int64) negotiation {
	n := negotiation{blksize: defBlockSize, windowsize: 1}
	windowAt := -1 // index of windowsize in oack
	for _, o := range opts {
		v, err := strconv.Atoi(o.value)
		switch o.name {
		case "blksize":
			if err != nil || v < minBlockSize {
				continue
			}
			v = min(v, maxBlockSize, max(l.maxBlock, minBlockSize))
			n.blksize = v
			if v < defBlockSize {
				n.windowed = true
			}
		case "tsize":
			if size < 0 {
				continue
			}
			v = 0
			o.value = strconv.FormatInt(size, 10)
			n.oack = append(n.oack, o)
			continue
		case "timeout":
			// RFC 2349 lets a server accept the value or decline
			// the option, not lower it.
			if err != nil || v < 1 || v > maxTimeoutSec || time.Duration(v)*time.Second > l.maxTimeout {
				continue
			}
			n.timeout = time.Duration(v) * time.Second
			n.windowed = true
		case "windowsize":
			if err != nil || v < 1 || l.maxWindow < 1 {
				continue
			}
			v = min(v, maxWindowSize, l.maxWindow)
			n.windowsize = v
			n.windowed = true
			windowAt = len(n.oack)
		default:
			continue
		}
		n.oack = append(n.oack, option{name: o.name, value: strconv.Itoa(v)})
	}
	if windowAt >= 0 {
		n.windowsize = max(1, min(n.windowsize, maxWindowBytes/n.blksize))
		n.oack[windowAt].value = strconv.Itoa(n.windowsize)
	}
	return n
}
