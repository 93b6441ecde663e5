package power

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Every error a Controller returns wraps at most one of
// them, so that callers sort failures with errors.Is and the message says
// the rest.
var (
	// ErrConfig: the BMC description is invalid, or its password
	// reference cannot be resolved. Permanent.
	ErrConfig = errors.New("power: invalid BMC configuration")
	// ErrUnreachable: the BMC did not answer in time, refused the
	// connection or its name did not resolve. Transient: Retry retries it.
	ErrUnreachable = errors.New("power: BMC unreachable")
	// ErrBusy: the BMC answered that it is busy or out of sessions
	// (HTTP 429/503, IPMI node busy or no session slot). Transient.
	ErrBusy = errors.New("power: BMC busy")
	// ErrAuth: the BMC rejected the user name or password, or the user
	// lacks the privilege. Permanent: retrying could lock the account.
	ErrAuth = errors.New("power: BMC rejected the credentials")
	// ErrTLS: the Redfish service's certificate did not verify against
	// the system roots, the configured CA or the configured fingerprint.
	ErrTLS = errors.New("power: BMC certificate not trusted")
	// ErrBootOverride: the BMC refused, or silently dropped, the one-time
	// network boot override.
	ErrBootOverride = errors.New("power: BMC refused the boot override")
	// ErrUnsupported: the BMC does not offer what was asked (a reset type,
	// a cipher suite, power control).
	ErrUnsupported = errors.New("power: not supported by the BMC")
	// ErrProtocol: the BMC's answer was malformed, too large or not what
	// the protocol allows (also any other HTTP error status).
	ErrProtocol = errors.New("power: unexpected answer from the BMC")
)

// IsTransient reports whether err is worth retrying: the BMC did not
// answer or said it is busy. Authentication, configuration and refusals
// are not, nor is a canceled context.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrBusy)
}

// Backoff bounds Retry. The zero value is usable.
type Backoff struct {
	// Attempts is the number of tries in all; default 3.
	Attempts int
	// Initial is the wait after the first failure, doubled after each
	// further one; default 1s.
	Initial time.Duration
	// Max caps one wait; default 10s.
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Attempts <= 0 {
		b.Attempts = 3
	}
	if b.Initial <= 0 {
		b.Initial = time.Second
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	return b
}

// Delay is the wait after failed attempt n (1-based): Initial·2^(n-1),
// capped at Max.
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Retry calls op until it succeeds, fails with an error that is not
// transient (see IsTransient), the attempts run out or ctx ends. It
// returns op's last error (or ctx's, wrapped with it). The total time is
// bounded by the attempts and Max, and by ctx.
func Retry(ctx context.Context, b Backoff, op func(context.Context) error) error {
	b = b.withDefaults()
	var err error
	for n := 1; ; n++ {
		if err = op(ctx); err == nil || !IsTransient(err) || n >= b.Attempts {
			if err != nil && n > 1 {
				err = fmt.Errorf("after %d attempts: %w", n, err)
			}
			return err
		}
		t := time.NewTimer(b.Delay(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (giving up: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// redact removes secret from s, so that a BMC echoing a password back in
// an error message cannot put it into our logs.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}

// clip bounds a message taken from a BMC and drops control characters.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
