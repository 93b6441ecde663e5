package tftpsrv

import (
	"net/netip"
	"time"
)

// EventKind tells a transfer's start from its end.
type EventKind int

// Event kinds.
const (
	// TransferStart: the handler produced content and sending begins.
	TransferStart EventKind = iota + 1
	// TransferEnd: the transfer finished, failed or was refused. Every
	// TransferStart is followed by exactly one TransferEnd; a request
	// refused before sending (not found, busy, bad name) gets only the end.
	TransferEnd
)

func (k EventKind) String() string {
	switch k {
	case TransferStart:
		return "start"
	case TransferEnd:
		return "end"
	}
	return "unknown"
}

// Event describes a transfer for progress reporting and metrics.
type Event struct {
	Kind       EventKind
	RemoteAddr netip.AddrPort
	Name       string // cleaned name; the raw name when cleaning refused it
	Size       int64  // content size, -1 when unknown
	Bytes      int64  // payload bytes acknowledged or sent so far (end only)
	Duration   time.Duration
	BlockSize  int
	WindowSize int
	// Probe marks the UEFI size probe: the client read the OACK (with
	// tsize) and ended the transfer with an ERROR, as EDK2 does before the
	// real download. It is normal and Err is nil.
	Probe bool
	// Err is nil for success; otherwise it matches ErrTimeout,
	// ErrStalled, ErrClientAborted, ErrBusy, ErrInvalidName,
	// fs.ErrNotExist, ErrServerClosed, or is the handler's or reader's
	// error.
	Err error
}

// Served reports whether the event is the end of a transfer that delivered
// its file: not a failure, not the UEFI size probe. It is what a boot
// server counts as a client's step (isosrc.HTTPEvent's Served is the same
// for HTTP).
func (ev Event) Served() bool {
	return ev.Kind == TransferEnd && !ev.Probe && ev.Err == nil
}
