package tftpsrv

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrorCode is a TFTP error code (RFC 1350 section 5, RFC 2347 for code 8).
type ErrorCode uint16

// The TFTP error codes. Clients show them to operators, so the server picks
// the most specific one instead of answering every refusal with code 1.
const (
	ErrCodeNotDefined      ErrorCode = 0
	ErrCodeFileNotFound    ErrorCode = 1
	ErrCodeAccessViolation ErrorCode = 2
	ErrCodeDiskFull        ErrorCode = 3
	ErrCodeIllegalOp       ErrorCode = 4
	ErrCodeUnknownTID      ErrorCode = 5
	ErrCodeFileExists      ErrorCode = 6
	ErrCodeNoSuchUser      ErrorCode = 7
	ErrCodeOptionRefused   ErrorCode = 8
)

// Error is a refusal with an exact TFTP code and a message meant for the
// client. A handler passes one to ResponseWriter.Error when it wants to choose
// the wording; any other error is mapped to a fixed message so that server
// paths and internal details never reach the wire.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("tftp error %d: %s", e.Code, e.Message)
}

// Sentinel errors, for errors.Is.
var (
	// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown
	// or Close, as net/http does.
	ErrServerClosed = errors.New("tftpsrv: server closed")
	// ErrInvalidName reports a requested name that is refused because it
	// would leave the served tree or cannot name a file (see CleanName).
	ErrInvalidName = errors.New("tftpsrv: invalid file name")
	// ErrBusy reports a request refused by MaxTransfers or
	// MaxTransfersPerClient.
	ErrBusy = errors.New("tftpsrv: too many transfers")
	// ErrTimeout reports a transfer given up because the client stopped
	// answering for Timeout × (Retries+1), or for StallTimeout if that is
	// shorter. A client that has acknowledged every byte of a non-empty
	// file and stops before acknowledging the empty block that ends it
	// (the file's size is a multiple of the block size; GRUB, knowing the
	// size from tsize, does so) has the whole file: that transfer succeeds
	// (octet mode).
	ErrTimeout = errors.New("tftpsrv: client stopped answering")
	// ErrStalled reports a transfer given up after Server.StallTimeout
	// without progress while the server itself was waiting: on the
	// handler, or on a Read of the content. (A client that stops
	// answering is given up with ErrTimeout, at StallTimeout at the
	// latest.) The transfer's Request.Context is cancelled with it as the
	// cause.
	ErrStalled = errors.New("tftpsrv: transfer stalled")
	// ErrClientAborted reports a transfer the client ended with an ERROR
	// packet after data had started.
	ErrClientAborted = errors.New("tftpsrv: client aborted the transfer")
	// ErrReadOnly reports a write request; the server never accepts writes.
	ErrReadOnly = errors.New("tftpsrv: write requests are not accepted")
)

// wireError maps an error to the code and text sent to the client. Only
// *Error chooses its own text; everything else gets a fixed message.
func wireError(err error) (ErrorCode, string) {
	var te *Error
	switch {
	case errors.As(err, &te):
		return te.Code, te.Message
	case errors.Is(err, fs.ErrNotExist):
		return ErrCodeFileNotFound, "file not found"
	case errors.Is(err, ErrInvalidName), errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrInvalid):
		return ErrCodeAccessViolation, "access violation"
	case errors.Is(err, ErrReadOnly):
		return ErrCodeAccessViolation, "server is read-only"
	case errors.Is(err, ErrBusy):
		return ErrCodeNotDefined, "server busy, try again later"
	case errors.Is(err, ErrStalled):
		return ErrCodeNotDefined, "transfer timed out"
	case errors.Is(err, ErrServerClosed):
		return ErrCodeNotDefined, "server shutting down"
	default:
		return ErrCodeNotDefined, "read error"
	}
}
