package power

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxRedfishBody bounds every Redfish response body read; a
// ComputerSystem is a few KiB.
const MaxRedfishBody = 1 << 20

// maxCAFile bounds a CA bundle.
const maxCAFile = 1 << 20

// Default Redfish paths, used when the service root does not link them.
const (
	rfRoot     = "/redfish/v1/"
	rfSessions = "/redfish/v1/SessionService/Sessions"
	rfSystems  = "/redfish/v1/Systems"
)

var errFingerprint = errors.New("certificate does not match the configured SHA-256 fingerprint")

// redfishController speaks a small part of Redfish over HTTPS.
type redfishController struct {
	b    BMC
	base string // https://host:port
	pw   string
	o    Options
	log  *slog.Logger
	hc   *http.Client

	mu         sync.Mutex
	loggedIn   bool
	basic      bool   // no SessionService: HTTP basic auth on every request
	token      string // X-Auth-Token
	sessionURI string // to DELETE at Close
	systems    string // Systems collection path
	system     string // the ComputerSystem path
	closed     bool
}

func newRedfish(b BMC, pw string, o Options) (*redfishController, error) {
	host, port, err := splitAddress(b.Address, 443)
	if err != nil {
		return nil, fmt.Errorf("%w: bmc.address: %v", ErrConfig, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case b.TLSCAFile != "":
		pem, err := readBounded(b.TLSCAFile, maxCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: bmc.%s: %v", ErrConfig, keyTLSCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: bmc.%s: %s holds no PEM certificate", ErrConfig, keyTLSCAFile, b.TLSCAFile)
		}
		tc.RootCAs = pool
	case b.TLSFingerprint != "":
		want, err := parseFingerprint(b.TLSFingerprint)
		if err != nil {
			return nil, fmt.Errorf("%w: bmc.%s: %v", ErrConfig, keyTLSFingerprint, err)
		}
		// The chain is not verified: the pin is the trust. It is checked
		// on every handshake, before any request is sent.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errFingerprint
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return errFingerprint
			}
			return nil
		}
	}
	to := o.timeout()
	tr := &http.Transport{
		// A BMC is on a management network: never through a proxy taken
		// from the environment.
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: min(to, 10*time.Second)}).DialContext,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    min(to, 10*time.Second),
		ResponseHeaderTimeout:  to,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   to,
		// A redirect would carry the session token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &redfishController{b: b, base: "https://" + net.JoinHostPort(host, strconv.Itoa(port)), pw: pw, o: o,
		log: o.logger().With("bmc", b.Address, "protocol", "redfish"), hc: hc}, nil
}

func readBounded(name string, n int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > n {
		return nil, fmt.Errorf("%s: over %d bytes", name, n)
	}
	return data, nil
}

// odataPath accepts a resource path the service gave us only if it stays
// on this service: an absolute path under /redfish/v1, no scheme, no host,
// no dot segments. A hostile BMC cannot send our credentials elsewhere.
func odataPath(p string) (string, error) {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/redfish/v1") ||
		strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") || strings.Contains(u.Path, "/./") ||
		len(p) > 512 {
		return "", fmt.Errorf("%w: resource path %q is not under /redfish/v1 of this service", ErrProtocol, clip(p, 80))
	}
	return u.EscapedPath(), nil
}

// rfReply is one bounded response.
type rfReply struct {
	status int
	header http.Header
	body   []byte
}

// redfishError is the standard error body.
type redfishError struct {
	Error struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		ExtendedInfo []struct {
			MessageID string `json:"MessageId"`
			Message   string `json:"Message"`
		} `json:"@Message.ExtendedInfo"`
	} `json:"error"`
}

// message is the service's own explanation, bounded and password-free.
func (x *redfishController) message(r *rfReply) string {
	var e redfishError
	if json.Unmarshal(r.body, &e) != nil {
		return fmt.Sprintf("HTTP %d", r.status)
	}
	parts := []string{fmt.Sprintf("HTTP %d", r.status)}
	// The top-level message is mostly "see ExtendedInfo": only used
	// when there is none.
	if e.Error.Message != "" && len(e.Error.ExtendedInfo) == 0 {
		parts = append(parts, e.Error.Message)
	}
	for i, ei := range e.Error.ExtendedInfo {
		if i == 3 {
			break
		}
		if ei.Message != "" {
			parts = append(parts, ei.Message)
		} else if ei.MessageID != "" {
			parts = append(parts, ei.MessageID)
		}
	}
	return clip(redact(strings.Join(parts, ": "), x.pw), 300)
}

// send makes one request. auth adds the session token or basic auth.
// Statuses outside want are errors sorted under a sentinel; the reply is
// returned with them.
func (x *redfishController) send(ctx context.Context, method, path string, body any, auth bool, hdr http.Header, want ...int) (*rfReply, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, x.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: redfish %s: %s %s: %v", ErrProtocol, x.b.Address, method, clip(path, 80), err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if auth {
		if x.basic {
			req.SetBasicAuth(x.b.User, x.pw)
		} else if x.token != "" {
			req.Header.Set("X-Auth-Token", x.token)
		}
	}
	pre := fmt.Sprintf("redfish %s: %s %s", x.b.Address, method, path)
	resp, err := x.hc.Do(req)
	if err != nil {
		return nil, x.transportErr(ctx, pre, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxRedfishBody+1))
	if err != nil {
		return nil, x.transportErr(ctx, pre+": reading the answer", err)
	}
	if len(data) > MaxRedfishBody {
		return nil, fmt.Errorf("%w: %s: answer over %d bytes", ErrProtocol, pre, MaxRedfishBody)
	}
	r := &rfReply{status: resp.StatusCode, header: resp.Header, body: data}
	x.log.Debug("redfish", "method", method, "path", path, "status", resp.StatusCode)
	if slices.Contains(want, r.status) {
		return r, nil
	}
	switch r.status {
	case http.StatusUnauthorized:
		return r, fmt.Errorf("%w: %s: %s (user %q)", ErrAuth, pre, x.message(r), x.b.User)
	case http.StatusForbidden:
		return r, fmt.Errorf("%w: %s: %s (user %q lacks the privilege)", ErrAuth, pre, x.message(r), x.b.User)
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
		http.StatusPreconditionFailed: // ETag changed under us: read again and retry
		return r, fmt.Errorf("%w: %s: %s", ErrBusy, pre, x.message(r))
	}
	return r, fmt.Errorf("%w: %s: %s", ErrProtocol, pre, x.message(r))
}

func (x *redfishController) transportErr(ctx context.Context, pre string, err error) error {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s: %w", pre, context.Canceled)
	case errors.Is(err, errFingerprint):
		return fmt.Errorf("%w: %s: %v", ErrTLS, pre, errFingerprint)
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &he), errors.As(err, &ie):
		return fmt.Errorf("%w: %s: %s (set bmc.%s or bmc.%s)", ErrTLS, pre, clip(err.Error(), 300), keyTLSCAFile, keyTLSFingerprint)
	}
	return fmt.Errorf("%w: %s: %s", ErrUnreachable, pre, clip(redact(err.Error(), x.pw), 300))
}

func decode(pre string, r *rfReply, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("%w: %s: not JSON: %v", ErrProtocol, pre, clip(err.Error(), 120))
	}
	return nil
}

type odataLink struct {
	ID string `json:"@odata.id"`
}

type rfServiceRoot struct {
	Systems        *odataLink
	SessionService *odataLink
	Links          struct {
		Sessions *odataLink
	}
}

// login reads the service root, opens a session (or settles for basic
// auth) and finds the system. x.mu is held.
func (x *redfishController) login(ctx context.Context) error {
	if x.closed {
		return fmt.Errorf("power: redfish %s: controller closed", x.b.Address)
	}
	if x.loggedIn {
		return nil
	}
	r, err := x.send(ctx, http.MethodGet, rfRoot, nil, false, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var root rfServiceRoot
	if err := decode("redfish "+x.b.Address+": service root", r, &root); err != nil {
		return err
	}
	x.systems = rfSystems
	if root.Systems != nil && root.Systems.ID != "" {
		if x.systems, err = odataPath(root.Systems.ID); err != nil {
			return err
		}
	}
	sessions := ""
	switch {
	case root.Links.Sessions != nil && root.Links.Sessions.ID != "":
		sessions = root.Links.Sessions.ID
	case root.SessionService != nil:
		sessions = rfSessions
	}
	x.basic, x.token, x.sessionURI = false, "", ""
	if sessions != "" {
		if sessions, err = odataPath(sessions); err != nil {
			return err
		}
		body := map[string]string{"UserName": x.b.User, "Password": x.pw}
		r, err := x.send(ctx, http.MethodPost, sessions, body, false, nil, http.StatusCreated, http.StatusOK)
		switch {
		case err == nil:
			x.token = r.header.Get("X-Auth-Token")
			if x.token == "" || len(x.token) > 4096 {
				return fmt.Errorf("%w: redfish %s: session created without a usable X-Auth-Token", ErrProtocol, x.b.Address)
			}
			if loc := r.header.Get("Location"); loc != "" {
				if u, perr := url.Parse(loc); perr == nil {
					x.sessionURI, _ = odataPath(u.EscapedPath())
				}
			}
			if x.sessionURI == "" {
				var l odataLink
				if json.Unmarshal(r.body, &l) == nil && l.ID != "" {
					x.sessionURI, _ = odataPath(l.ID)
				}
			}
		case r != nil && (r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotImplemented):
			x.log.Info("no usable SessionService, using basic authentication", "status", r.status)
			x.basic = true
		default:
			return err
		}
	} else {
		x.log.Info("service root links no SessionService, using basic authentication")
		x.basic = true
	}
	x.loggedIn = true
	if x.system == "" {
		if err := x.findSystem(ctx); err != nil {
			x.logout(ctx)
			return err
		}
	}
	return nil
}

type rfCollection struct {
	Members []odataLink
}

func (x *redfishController) findSystem(ctx context.Context) error {
	r, err := x.send(ctx, http.MethodGet, x.systems, nil, true, nil, http.StatusOK)
	if err != nil {
		return err
	}
	var c rfCollection
	if err := decode("redfish "+x.b.Address+": Systems", r, &c); err != nil {
		return err
	}
	var ids []string
	for _, m := range c.Members {
		p, err := odataPath(m.ID)
		if err != nil {
			return err
		}
		id := p[strings.LastIndexByte(strings.TrimSuffix(p, "/"), '/')+1:]
		id = strings.TrimSuffix(id, "/")
		if x.b.SystemID != "" && id == x.b.SystemID {
			x.system = p
			return nil
		}
		ids = append(ids, id)
	}
	switch {
	case x.b.SystemID != "":
		return fmt.Errorf("%w: redfish %s: no system %q among %d (%s)", ErrConfig, x.b.Address, x.b.SystemID, len(ids), clip(strings.Join(ids, ", "), 200))
	case len(ids) == 0:
		return fmt.Errorf("%w: redfish %s: the Systems collection is empty", ErrProtocol, x.b.Address)
	case len(ids) > 1:
		return fmt.Errorf("%w: redfish %s: %d systems (%s): set bmc.%s", ErrConfig, x.b.Address, len(ids), clip(strings.Join(ids, ", "), 200), keySystemID)
	}
	p, _ := odataPath(c.Members[0].ID)
	x.system = p
	return nil
}

// authed runs f after login; a session the service expired (401) is
// opened again once.
func (x *redfishController) authed(ctx context.Context, f func(ctx context.Context) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.login(ctx); err != nil {
		return err
	}
	err := f(ctx)
	if errors.Is(err, ErrAuth) && !x.basic && ctx.Err() == nil {
		x.log.Info("session rejected, logging in again")
		x.loggedIn, x.token, x.sessionURI = false, "", ""
		if lerr := x.login(ctx); lerr != nil {
			return lerr
		}
		err = f(ctx)
	}
	return err
}

type rfSystem struct {
	ID         string `json:"Id"`
	PowerState string
	Boot       struct {
		BootSourceOverrideTarget  string
		BootSourceOverrideEnabled string
		BootSourceOverrideMode    string
		TargetAllowable           []string `json:"BootSourceOverrideTarget@Redfish.AllowableValues"`
	}
	Actions struct {
		Reset *struct {
			Target     string   `json:"target"`
			Allowable  []string `json:"ResetType@Redfish.AllowableValues"`
			ActionInfo string   `json:"@Redfish.ActionInfo"`
		} `json:"#ComputerSystem.Reset"`
	}
	ETag string `json:"@odata.etag"`
}

func (x *redfishController) getSystem(ctx context.Context) (*rfSystem, string, error) {
	r, err := x.send(ctx, http.MethodGet, x.system, nil, true, nil, http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	var s rfSystem
	if err := decode("redfish "+x.b.Address+": "+x.system, r, &s); err != nil {
		return nil, "", err
	}
	etag := r.header.Get("ETag")
	if etag == "" {
		etag = s.ETag
	}
	return &s, etag, nil
}

func mapState(s string) PowerState {
	switch s {
	case "On":
		return StateOn
	case "Off":
		return StateOff
	case "PoweringOn":
		return StatePoweringOn
	case "PoweringOff":
		return StatePoweringOff
	}
	return StateUnknown
}

func (x *redfishController) PowerState(ctx context.Context) (PowerState, error) {
	st := StateUnknown
	err := x.authed(ctx, func(ctx context.Context) error {
		s, _, err := x.getSystem(ctx)
		if err != nil {
			return err
		}
		st = mapState(s.PowerState)
		return nil
	})
	return st, err
}

// resetTypes reads the reset types the system allows: inline, or from
// the action's ActionInfo resource. Nil when the service says neither.
func (x *redfishController) resetTypes(ctx context.Context, s *rfSystem) ([]string, error) {
	a := s.Actions.Reset
	if len(a.Allowable) > 0 || a.ActionInfo == "" {
		return a.Allowable, nil
	}
	p, err := odataPath(a.ActionInfo)
	if err != nil {
		return nil, err
	}
	r, err := x.send(ctx, http.MethodGet, p, nil, true, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var info struct {
		Parameters []struct {
			Name            string
			AllowableValues []string
		}
	}
	if err := decode("redfish "+x.b.Address+": "+p, r, &info); err != nil {
		return nil, err
	}
	for _, prm := range info.Parameters {
		if prm.Name == "ResetType" {
			return prm.AllowableValues, nil
		}
	}
	return nil, nil
}

// pickReset is the first of prefs the system allows; with no list
// advertised, the first of prefs.
func pickReset(allowed, prefs []string) (string, bool) {
	if len(allowed) == 0 {
		return prefs[0], true
	}
	for _, p := range prefs {
		if slices.Contains(allowed, p) {
			return p, true
		}
	}
	return "", false
}

func (x *redfishController) reset(ctx context.Context, what string, prefs ...string) error {
	return x.authed(ctx, func(ctx context.Context) error {
		s, _, err := x.getSystem(ctx)
		if err != nil {
			return err
		}
		if s.Actions.Reset == nil || s.Actions.Reset.Target == "" {
			return fmt.Errorf("%w: redfish %s: %s: the system has no ComputerSystem.Reset action", ErrUnsupported, x.b.Address, what)
		}
		target, err := odataPath(s.Actions.Reset.Target)
		if err != nil {
			return err
		}
		allowed, err := x.resetTypes(ctx, s)
		if err != nil {
			return err
		}
		rt, ok := pickReset(allowed, prefs)
		if !ok {
			return fmt.Errorf("%w: redfish %s: %s: the system allows ResetType %s, none of %s", ErrUnsupported, x.b.Address, what,
				clip(strings.Join(allowed, ", "), 200), strings.Join(prefs, ", "))
		}
		r, err := x.send(ctx, http.MethodPost, target, map[string]string{"ResetType": rt}, true, nil,
			http.StatusOK, http.StatusAccepted, http.StatusNoContent)
		if err != nil {
			if r != nil && r.status == http.StatusBadRequest {
				return fmt.Errorf("%w: redfish %s: %s: ResetType %s refused: %s", ErrUnsupported, x.b.Address, what, rt, x.message(r))
			}
			return err
		}
		x.log.Info("redfish reset", "reset_type", rt)
		return nil
	})
}

func (x *redfishController) PowerOn(ctx context.Context) error {
	return x.reset(ctx, "power on", "On", "ForceOn")
}

func (x *redfishController) PowerCycle(ctx context.Context) error {
	return x.reset(ctx, "power cycle", "ForceRestart", "PowerCycle")
}

func rfMode(m BootMode) string {
	switch m {
	case BootUEFI:
		return "UEFI"
	case BootLegacy:
		return "Legacy"
	}
	return ""
}

func (x *redfishController) SetNextBoot(ctx context.Context, mode BootMode) (BootMode, error) {
	applied := mode
	err := x.authed(ctx, func(ctx context.Context) error {
		applied = mode
		pre := fmt.Sprintf("redfish %s: set next boot to Pxe once", x.b.Address)
		s, etag, err := x.getSystem(ctx)
		if err != nil {
			return err
		}
		if t := s.Boot.TargetAllowable; len(t) > 0 && !slices.Contains(t, "Pxe") {
			return fmt.Errorf("%w: %s: the system offers BootSourceOverrideTarget %s, not Pxe", ErrBootOverride, pre, clip(strings.Join(t, ", "), 200))
		}
		var hdr http.Header
		if etag != "" {
			hdr = http.Header{"If-Match": {etag}}
		}
		boot := map[string]string{"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}
		if m := rfMode(mode); m != "" {
			boot["BootSourceOverrideMode"] = m
		}
		ok := []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent}
		r, err := x.send(ctx, http.MethodPatch, x.system, map[string]any{"Boot": boot}, true, hdr, ok...)
		if err != nil && r != nil && r.status == http.StatusBadRequest && boot["BootSourceOverrideMode"] != "" {
			first := x.message(r)
			x.log.Warn("BMC refused BootSourceOverrideMode; retrying without it", "reason", first)
			delete(boot, "BootSourceOverrideMode")
			applied = BootAnyMode
			r, err = x.send(ctx, http.MethodPatch, x.system, map[string]any{"Boot": boot}, true, hdr, ok...)
			if err != nil && r != nil && r.status == http.StatusBadRequest {
				return fmt.Errorf("%w: %s: %s (also without BootSourceOverrideMode: %s)", ErrBootOverride, pre, first, x.message(r))
			}
		}
		if err != nil {
			if r != nil && (r.status == http.StatusBadRequest || r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotImplemented) {
				return fmt.Errorf("%w: %s: %s", ErrBootOverride, pre, x.message(r))
			}
			return err
		}
		if r.status == http.StatusAccepted {
			// Applied later by a task: nothing to read back yet.
			x.log.Info("redfish boot override accepted for later", "mode", string(applied))
			return nil
		}
		// Some BMCs answer 200 and drop what they do not support: read
		// back what was stored.
		s, _, err = x.getSystem(ctx)
		if err != nil {
			return err
		}
		if s.Boot.BootSourceOverrideTarget != "Pxe" || s.Boot.BootSourceOverrideEnabled != "Once" {
			return fmt.Errorf("%w: %s: the BMC accepted the change but reports target %q, enabled %q", ErrBootOverride, pre,
				clip(s.Boot.BootSourceOverrideTarget, 40), clip(s.Boot.BootSourceOverrideEnabled, 40))
		}
		if m := rfMode(mode); m != "" && applied != BootAnyMode && s.Boot.BootSourceOverrideMode != m {
			x.log.Warn("BMC kept another boot mode", "asked", m, "reports", clip(s.Boot.BootSourceOverrideMode, 40))
			applied = BootAnyMode
		}
		x.log.Info("redfish next boot set", "target", "Pxe", "mode", string(applied))
		return nil
	})
	if err != nil {
		return BootAnyMode, err
	}
	return applied, nil
}

// logout deletes the session, best effort. x.mu is held.
func (x *redfishController) logout(ctx context.Context) {
	if x.sessionURI != "" && x.token != "" {
		if _, err := x.send(ctx, http.MethodDelete, x.sessionURI, nil, true, nil, http.StatusOK, http.StatusNoContent, http.StatusAccepted); err != nil {
			x.log.Info("logout failed", "err", err)
		}
	}
	x.loggedIn, x.token, x.sessionURI = false, "", ""
}

func (x *redfishController) Close(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, min(x.o.timeout(), 5*time.Second))
	defer cancel()
	x.logout(ctx)
	x.closed = true
	x.hc.CloseIdleConnections()
	return nil
}
