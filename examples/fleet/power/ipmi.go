package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
)

// ipmiController speaks IPMI 2.0 over LAN (RMCP+) through go-ipmi. One
// session is opened on first use and kept until Close; a transport
// failure drops it so that the next call opens a new one.
type ipmiController struct {
	b      BMC
	host   string
	port   int
	pw     string
	o      Options
	log    *slog.Logger
	mu     sync.Mutex
	c      *client.Client
	suite  types.CipherSuiteID
	closed bool
}

func newIPMI(b BMC, pw string, o Options) (*ipmiController, error) {
	host, port, err := splitAddress(b.Address, 623)
	if err != nil {
		return nil, fmt.Errorf("%w: bmc.address: %v", ErrConfig, err)
	}
	return &ipmiController{b: b, host: host, port: port, pw: pw, o: o,
		log: o.logger().With("bmc", b.Address, "protocol", "ipmi")}, nil
}

func (x *ipmiController) addr() string { return net.JoinHostPort(x.host, strconv.Itoa(x.port)) }

// exchangeTimeout is the wait for one UDP answer; go-ipmi retransmits
// four times, so an unreachable BMC fails after five of them.
func (x *ipmiController) exchangeTimeout() time.Duration {
	return min(max(x.o.timeout()/5, 200*time.Millisecond), 2*time.Second)
}

// connect opens a session with one cipher suite.
func (x *ipmiController) connect(ctx context.Context, suite types.CipherSuiteID) (*client.Client, error) {
	c, err := client.NewClient(x.host, x.port, x.b.User, x.pw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrConfig, redact(err.Error(), x.pw))
	}
	c.WithCipherSuiteID(suite)
	c.WithTimeout(x.exchangeTimeout())
	c.WithRetry(4)
	// Chassis Control and Set System Boot Options need Operator, and an
	// account limited to it must do.
	c.WithMaxPrivilegeLevel(types.PrivilegeLevelOperator)
	if err := c.Connect(ctx); err != nil {
		// Close releases the UDP socket; the Close Session it sends is
		// pointless here, so it gets little time.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 300*time.Millisecond)
		_ = c.Close(cctx)
		cancel()
		return nil, err
	}
	return c, nil
}

// session returns the open session, opening one if needed. x.mu is held.
func (x *ipmiController) session(ctx context.Context) (*client.Client, error) {
	if x.closed {
		return nil, fmt.Errorf("power: ipmi %s: controller closed", x.addr())
	}
	if x.c != nil {
		return x.c, nil
	}
	first := types.CipherSuiteID(17)
	if x.b.CipherSuite == 3 {
		first = 3
	}
	c, err := x.connect(ctx, first)
	if err != nil && x.b.CipherSuite == 0 && cipherRefused(err) {
		x.log.Info("BMC refused cipher suite 17, falling back to 3")
		first = 3
		c, err = x.connect(ctx, first)
	}
	if err != nil {
		e := x.wrap(ctx, "open session (cipher suite "+strconv.Itoa(int(first))+")", err)
		if cipherRefused(err) {
			e = fmt.Errorf("%w: ipmi %s: the BMC refused cipher suite %d at Open Session (bmc.%s: 3 or 17 pins a suite; unset tries 17, then 3)",
				ErrUnsupported, x.addr(), first, keyCipherSuite)
		}
		return nil, e
	}
	x.c, x.suite = c, first
	x.log.Debug("IPMI session open", "cipher_suite", int(first))
	return c, nil
}

// drop forgets a session whose transport failed.
func (x *ipmiController) drop(ctx context.Context) {
	if x.c == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
	_ = x.c.Close(cctx)
	cancel()
	x.c = nil
}

// do runs one IPMI operation under the lock and the timeout.
func (x *ipmiController) do(ctx context.Context, op string, f func(ctx context.Context, c *client.Client) error) (err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	// The BMC's bytes are parsed by go-ipmi on this goroutine: a packet
	// that trips it must fail this call, not the program.
	defer func() {
		if p := recover(); p != nil {
			x.c = nil
			err = fmt.Errorf("%w: ipmi %s: %s: malformed answer (%v)", ErrProtocol, x.addr(), op, clip(fmt.Sprint(p), 120))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, x.o.timeout())
	defer cancel()
	c, err := x.session(ctx)
	if err != nil {
		return err
	}
	err = f(ctx, c)
	// A session whose transport failed, or that got an answer it could
	// not read, is not trusted again; a BMC's refusal leaves it usable.
	if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrProtocol) || errors.Is(err, context.DeadlineExceeded) {
		x.drop(ctx)
	}
	return err
}

func (x *ipmiController) PowerState(ctx context.Context) (PowerState, error) {
	st := StateUnknown
	err := x.do(ctx, "chassis status", func(ctx context.Context, c *client.Client) error {
		r, err := c.GetChassisStatus(ctx)
		if err != nil {
			return x.wrap(ctx, "get chassis status", err)
		}
		st = StateOff
		if r.PowerIsOn {
			st = StateOn
		}
		return nil
	})
	return st, err
}

func (x *ipmiController) control(ctx context.Context, what string, cc chassis.ChassisControl) error {
	return x.do(ctx, what, func(ctx context.Context, c *client.Client) error {
		if _, err := c.ChassisControl(ctx, cc); err != nil {
			if re, ok := types.IsResponseError(err); ok && refusal(re.CompletionCode()) {
				return fmt.Errorf("%w: ipmi %s: %s: %s", ErrUnsupported, x.addr(), what, x.detail(err))
			}
			return x.wrap(ctx, what, err)
		}
		x.log.Info("IPMI chassis control", "action", what)
		return nil
	})
}

func (x *ipmiController) PowerOn(ctx context.Context) error {
	return x.control(ctx, "chassis power on", chassis.ChassisControlPowerUp)
}

func (x *ipmiController) PowerCycle(ctx context.Context) error {
	return x.control(ctx, "chassis power cycle", chassis.ChassisControlPowerCycle)
}

// bootFlags is the Set System Boot Options "boot flags" parameter (5) for
// a one-time PXE boot: valid, not persistent, EFI bit for UEFI.
func bootFlags(efi bool) *types.BootOptionParam_BootFlags {
	return &types.BootOptionParam_BootFlags{
		BootFlagsValid:     true,
		Persist:            false,
		BIOSBootType:       types.BIOSBootType(efi),
		BootDeviceSelector: types.BootDeviceSelectorForcePXE,
	}
}

func (x *ipmiController) SetNextBoot(ctx context.Context, mode BootMode) (BootMode, error) {
	applied := mode
	err := x.do(ctx, "set next boot", func(ctx context.Context, c *client.Client) error {
		const what = "set next boot to PXE (Set System Boot Options, boot flags)"
		// The parameter is written alone: "set in progress" (parameter 0)
		// is optional in the spec and some BMCs refuse it.
		err := c.SetSystemBootOptionsParamFor(ctx, bootFlags(mode == BootUEFI))
		re, answered := types.IsResponseError(err)
		if err != nil && answered && mode == BootUEFI {
			x.log.Warn("BMC refused the boot flags with the EFI bit; retrying without it", "reason", x.detail(err))
			err2 := c.SetSystemBootOptionsParamFor(ctx, bootFlags(false))
			if err2 == nil {
				applied = BootAnyMode
				return nil
			}
			if re2, ok := types.IsResponseError(err2); ok {
				return fmt.Errorf("%w: ipmi %s: %s: %s (also without the EFI flag: %s)", ErrBootOverride, x.addr(), what, x.detail(err), ccText(re2))
			}
			return x.wrap(ctx, what+" without the EFI flag", err2)
		}
		if err != nil {
			if answered {
				return fmt.Errorf("%w: ipmi %s: %s: %s", ErrBootOverride, x.addr(), what, ccText(re))
			}
			return x.wrap(ctx, what, err)
		}
		x.log.Info("IPMI next boot set", "device", "pxe", "mode", string(mode))
		return nil
	})
	if err != nil {
		return BootAnyMode, err
	}
	return applied, nil
}

func (x *ipmiController) Close(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	if x.c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, min(x.o.timeout(), 5*time.Second))
	defer cancel()
	err := x.c.Close(ctx)
	x.c = nil
	if err != nil {
		return x.wrap(ctx, "close session", err)
	}
	return nil
}

// refusal reports completion codes by which a BMC says "not this": the
// request is understood but the value or the command is not taken.
func refusal(cc types.CompletionCode) bool {
	switch cc {
	case types.CodeInvalidCommand, types.CodeParameterOutOfRange, types.CodeRequestDataFieldInvalid,
		types.CodeIllegalCommand, 0x80, 0x81, 0x82, // parameter not supported, set in progress, read-only
		0xD5, 0xD6: // not supported in present state; sub-function disabled
		return true
	}
	return false
}

func ccText(re *types.ResponseError) string {
	cc := re.CompletionCode()
	return fmt.Sprintf("completion code %#02x (%s)", uint8(cc), cc.String())
}

// detail is a library error as one bounded, password-free line.
func (x *ipmiController) detail(err error) string {
	if re, ok := types.IsResponseError(err); ok {
		return ccText(re)
	}
	return clip(redact(err.Error(), x.pw), 300)
}

// cipherRefused reports an Open Session refused for its algorithms.
func cipherRefused(err error) bool {
	code, ok := rmcpStatus(err)
	if !ok {
		// A BMC refusing an Open Session may answer with just the tag and
		// the status code (ipmi_sim does, for suite 17), which go-ipmi
		// reports as too short to unpack rather than as a status. No
		// user name is involved at that step, so it is the algorithms.
		// The library formats that cause with %v, so only its text is
		// left to match.
		msg := err.Error()
		return strings.Contains(msg, "RMCP+ Open Session failed") && strings.Contains(msg, types.ErrUnpackedDataTooShort.Error())
	}
	switch code {
	case types.RmcpStatusCodeInvalidAuthAlg, types.RmcpStatusCodeInvalidIntegrityAlg,
		types.RmcpStatusCodeNoMatchingAuthPayload, types.RmcpStatusCodeNoMatchingIntegrityPayload,
		types.RmcpStatusCodeInvalidConfidentAlg, types.RmcpStatusCodeNoCipherSuiteMatch:
		return true
	}
	return false
}

// wrap sorts a go-ipmi error under one sentinel.
func (x *ipmiController) wrap(ctx context.Context, what string, err error) error {
	pre := fmt.Sprintf("ipmi %s: %s", x.addr(), what)
	code, hasStatus := rmcpStatus(err)
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s: %w", pre, context.Canceled)
	}
	var ne net.Error
	var dns *net.DNSError
	var oe *net.OpError
	switch {
	case errors.Is(err, client.ErrRAKPAuthentication) || strings.Contains(err.Error(), client.ErrRAKPAuthentication.Error()):
		return fmt.Errorf("%w: %s: wrong password (RAKP authentication code mismatch)", ErrAuth, pre)
	case hasStatus:
		se := types.NewRmcpStatusError(code)
		switch code {
		case types.RmcpStatusCodeUnauthorizedName, types.RmcpStatusCodeInvalidRole,
			types.RmcpStatusCodeUnauthorizedRoleOfPriLevel, types.RmcpStatusCodeInvalidNameLength,
			types.RmcpStatusCodeInvalidIntegrityCheckValue, types.RmcpStatusCodeUnauthorizedGUID:
			return fmt.Errorf("%w: %s: %s", ErrAuth, pre, se.Error())
		case types.RmcpStatusCodeNoResToCreateSess, types.RmcpStatusCodeNoResToCreateSessAtRole:
			return fmt.Errorf("%w: %s: %s", ErrBusy, pre, se.Error())
		}
		return fmt.Errorf("%w: %s: %s", ErrProtocol, pre, se.Error())
	case errors.As(err, new(*types.ResponseError)):
		re, _ := types.IsResponseError(err)
		switch re.CompletionCode() {
		case types.CodeNodeBusy, types.CodeProcessTimeout:
			return fmt.Errorf("%w: %s: %s", ErrBusy, pre, ccText(re))
		case 0xD4: // insufficient privilege
			return fmt.Errorf("%w: %s: %s", ErrAuth, pre, ccText(re))
		}
		return fmt.Errorf("%w: %s: %s", ErrProtocol, pre, ccText(re))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &dns), errors.As(err, &oe),
		errors.As(err, &ne) && ne.Timeout(),
		// go-ipmi's unexported "no datagram matched before deadline": the
		// BMC stayed silent, or only strays came.
		strings.Contains(err.Error(), "no datagram matched"):
		return fmt.Errorf("%w: %s: no answer (%s)", ErrUnreachable, pre, x.detail(err))
	}
	return fmt.Errorf("%w: %s: %s", ErrProtocol, pre, x.detail(err))
}

var rmcpStatusText = regexp.MustCompile(`RMCP\+ status (0x[0-9a-f]{1,2})`)

// rmcpStatus finds the RMCP+ status code of a failed session setup: in
// the error chain or, since go-ipmi joins the per-suite errors with %v,
// in its text.
func rmcpStatus(err error) (types.RmcpStatusCode, bool) {
	var se *types.RmcpStatusError
	if errors.As(err, &se) {
		return se.StatusCode(), true
	}
	m := rmcpStatusText.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	n, perr := strconv.ParseUint(m[1], 0, 8)
	if perr != nil {
		return 0, false
	}
	return types.RmcpStatusCode(n), true
}
