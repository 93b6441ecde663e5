package power

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Protocol is how a BMC is spoken to.
type Protocol string

// The protocols.
const (
	// IPMI is IPMI 2.0 over LAN (RMCP+, UDP port 623 by default).
	IPMI Protocol = "ipmi"
	// Redfish is DMTF Redfish over HTTPS (port 443 by default).
	Redfish Protocol = "redfish"
)

// BootMode is the firmware mode of the one-time network boot.
type BootMode string

// The boot modes.
const (
	// BootUEFI asks for a UEFI network boot (the default).
	BootUEFI BootMode = "uefi"
	// BootLegacy asks for a legacy BIOS ("PC compatible") network boot.
	BootLegacy BootMode = "legacy"
	// BootAnyMode is what SetNextBoot reports when the BMC took the
	// network boot but not the mode: the firmware boots in whatever mode
	// it is set to.
	BootAnyMode BootMode = ""
)

// BMC describes one baseboard management controller, as a host's "bmc:"
// key of the inventory gives it:
//
//	bmc:
//	  type: redfish                # ipmi | redfish
//	  address: 10.0.1.21           # host[:port]
//	  user: admin
//	  password_env: BMC_WEB01      # or password_file: /etc/pxekit/bmc/web01
//	  tls_fingerprint: "AB:CD:..." # redfish: or tls_ca_file, else system roots
//
// The password is never in the description: only the name of an
// environment variable or of a file holding it, read when a Controller is
// opened (Open), and never logged or put into an error.
type BMC struct {
	// Type is the protocol; required.
	Type Protocol
	// Address is host[:port] (IPv6 in brackets when with a port);
	// the port defaults to 623 for IPMI and 443 for Redfish.
	Address string
	// User is the BMC account; required.
	User string
	// PasswordEnv names the environment variable holding the password.
	// Exactly one of PasswordEnv and PasswordFile is required.
	PasswordEnv string
	// PasswordFile is a file whose content (one trailing newline
	// dropped) is the password.
	PasswordFile string
	// BootMode is the firmware mode of the network boot; default
	// BootUEFI.
	BootMode BootMode

	// SystemID is the Redfish ComputerSystem's Id; default: the only
	// member of the Systems collection (an error if there are several).
	SystemID string
	// TLSCAFile is a PEM file of the CA(s) that signed the Redfish
	// service's certificate, in place of the system roots. The name or
	// address in Address must match the certificate.
	TLSCAFile string
	// TLSFingerprint is the SHA-256 of the Redfish service's certificate
	// (DER), hex, colons allowed: the certificate is then trusted by this
	// pin alone, which is how self-signed BMC certificates are used.
	// At most one of TLSCAFile and TLSFingerprint.
	TLSFingerprint string

	// CipherSuite is the IPMI RMCP+ cipher suite: 17 (HMAC-SHA256,
	// AES-128) or 3 (HMAC-SHA1, AES-128). 0, the default, tries 17 and
	// falls back to 3 only when the BMC refuses suite 17's algorithms at
	// Open Session, never after a failed login, so that a wrong password
	// costs one attempt. Set 17 to forbid the fallback.
	CipherSuite int
}

// Field names of the description, as the inventory spells them.
const (
	keyType           = "type"
	keyAddress        = "address"
	keyUser           = "user"
	keyPasswordEnv    = "password_env"
	keyPasswordFile   = "password_file"
	keyBootMode       = "boot_mode"
	keySystemID       = "system_id"
	keyTLSCAFile      = "tls_ca_file"
	keyTLSFingerprint = "tls_fingerprint"
	keyCipherSuite    = "cipher_suite"
)

var (
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	systemID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	dnsName  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$`)
)

// maxUserLen bounds a Redfish user name (IPMI allows 16 bytes).
const maxUserLen = 64

// ParseBMC builds a BMC from a decoded YAML/JSON mapping, as the
// inventory gives it. Unknown keys are errors (a misspelt key must not
// silently drop a setting), and so is an inline password. The result is
// validated (see Validate). Errors wrap ErrConfig and never contain a
// password.
func ParseBMC(m map[string]any) (BMC, error) {
	var b BMC
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	str := func(k string, v any) (string, error) {
		switch s := v.(type) {
		case string:
			return s, nil
		case nil:
			return "", nil
		}
		return "", fmt.Errorf("%w: bmc.%s: want a string, got %T", ErrConfig, k, v)
	}
	for _, k := range keys {
		v := m[k]
		var s string
		var err error
		switch k {
		case "password", "pass", "passwd":
			// The value is deliberately not looked at.
			return BMC{}, fmt.Errorf("%w: bmc.%s: passwords are not accepted inline; use %s (an environment variable) or %s", ErrConfig, k, keyPasswordEnv, keyPasswordFile)
		case keyCipherSuite:
			switch n := v.(type) {
			case int:
				b.CipherSuite = n
			case int64:
				b.CipherSuite = int(max(min(n, 1<<20), -1))
			case uint64:
				b.CipherSuite = int(min(n, 1<<20))
			case string:
				b.CipherSuite, err = strconv.Atoi(n)
				if err != nil {
					return BMC{}, fmt.Errorf("%w: bmc.%s: %q is not a number", ErrConfig, k, clip(n, 32))
				}
			case nil:
			default:
				return BMC{}, fmt.Errorf("%w: bmc.%s: want a number, got %T", ErrConfig, k, v)
			}
			continue
		default:
			s, err = str(k, v)
		}
		if err != nil {
			return BMC{}, err
		}
		switch k {
		case keyType:
			b.Type = Protocol(strings.ToLower(s))
		case keyAddress:
			b.Address = s
		case keyUser:
			b.User = s
		case keyPasswordEnv:
			b.PasswordEnv = s
		case keyPasswordFile:
			b.PasswordFile = s
		case keyBootMode:
			b.BootMode = BootMode(strings.ToLower(s))
		case keySystemID:
			b.SystemID = s
		case keyTLSCAFile:
			b.TLSCAFile = s
		case keyTLSFingerprint:
			b.TLSFingerprint = s
		default:
			return BMC{}, fmt.Errorf("%w: bmc: unknown key %q (known: %s)", ErrConfig, clip(k, 40), strings.Join(knownKeys(), ", "))
		}
	}
	if err := b.Validate(); err != nil {
		return BMC{}, err
	}
	return b, nil
}

func knownKeys() []string {
	return []string{keyType, keyAddress, keyUser, keyPasswordEnv, keyPasswordFile, keyBootMode,
		keySystemID, keyTLSCAFile, keyTLSFingerprint, keyCipherSuite}
}

// UnmarshalYAML lets an inventory struct hold a BMC under a "bmc:" key;
// it decodes the mapping and applies ParseBMC.
func (b *BMC) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: bmc: want a mapping (line %d)", ErrConfig, n.Line)
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("%w: bmc (line %d): %v", ErrConfig, n.Line, err)
	}
	p, err := ParseBMC(m)
	if err != nil {
		return fmt.Errorf("%w (line %d)", err, n.Line)
	}
	*b = p
	return nil
}

// Validate checks the description without touching the network or the
// password. Errors wrap ErrConfig.
func (b *BMC) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: bmc.%s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch b.Type {
	case IPMI, Redfish:
	case "":
		return bad("%s: required (ipmi or redfish)", keyType)
	default:
		return bad("%s: %q is neither ipmi nor redfish", keyType, clip(string(b.Type), 40))
	}
	if _, _, err := splitAddress(b.Address, 1); err != nil {
		return bad("%s: %v", keyAddress, err)
	}
	if b.User == "" {
		return bad("%s: required", keyUser)
	}
	if len(b.User) > maxUserLen || strings.ContainsFunc(b.User, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("%s: over %d bytes or with control characters", keyUser, maxUserLen)
	}
	if b.Type == IPMI && len(b.User) > 16 {
		return bad("%s: IPMI user names are at most 16 bytes", keyUser)
	}
	switch {
	case b.PasswordEnv == "" && b.PasswordFile == "":
		return bad("%s or %s: one is required", keyPasswordEnv, keyPasswordFile)
	case b.PasswordEnv != "" && b.PasswordFile != "":
		return bad("%s and %s: give one, not both", keyPasswordEnv, keyPasswordFile)
	case b.PasswordEnv != "" && !envName.MatchString(b.PasswordEnv):
		return bad("%s: %q is not an environment variable name", keyPasswordEnv, clip(b.PasswordEnv, 40))
	case b.PasswordFile != "" && (len(b.PasswordFile) > 4096 || strings.ContainsRune(b.PasswordFile, 0)):
		return bad("%s: not a usable path", keyPasswordFile)
	}
	switch b.BootMode {
	case "", BootUEFI, BootLegacy:
	default:
		return bad("%s: %q is neither uefi nor legacy", keyBootMode, clip(string(b.BootMode), 40))
	}
	redfishOnly := map[string]string{keySystemID: b.SystemID, keyTLSCAFile: b.TLSCAFile, keyTLSFingerprint: b.TLSFingerprint}
	if b.Type == IPMI {
		for _, k := range []string{keySystemID, keyTLSCAFile, keyTLSFingerprint} {
			if redfishOnly[k] != "" {
				return bad("%s: only for type redfish", k)
			}
		}
		switch b.CipherSuite {
		case 0, 3, 17:
		default:
			return bad("%s: %d is not supported (3 or 17; 0 for 17 falling back to 3)", keyCipherSuite, b.CipherSuite)
		}
	} else {
		if b.CipherSuite != 0 {
			return bad("%s: only for type ipmi", keyCipherSuite)
		}
		if b.SystemID != "" && !systemID.MatchString(b.SystemID) {
			return bad("%s: %q is not a Redfish resource Id", keySystemID, clip(b.SystemID, 40))
		}
		if b.TLSCAFile != "" && b.TLSFingerprint != "" {
			return bad("%s and %s: give one, not both", keyTLSCAFile, keyTLSFingerprint)
		}
		if b.TLSFingerprint != "" {
			if _, err := parseFingerprint(b.TLSFingerprint); err != nil {
				return bad("%s: %v", keyTLSFingerprint, err)
			}
		}
	}
	return nil
}

// parseFingerprint decodes a SHA-256 fingerprint written as 64 hex digits,
// with or without colons, any case, optionally prefixed "sha256:".
func parseFingerprint(s string) ([]byte, error) {
	t := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	t = strings.ReplaceAll(t, ":", "")
	if len(t) != 64 {
		return nil, fmt.Errorf("want the 64 hex digits of a SHA-256, got %d characters", len(t))
	}
	fp, err := hex.DecodeString(t)
	if err != nil {
		return nil, fmt.Errorf("not hex")
	}
	return fp, nil
}

// splitAddress checks host[:port] and fills in the default port.
func splitAddress(addr string, defPort int) (host string, port int, err error) {
	if addr == "" {
		return "", 0, fmt.Errorf("required (host or host:port)")
	}
	if len(addr) > 300 {
		return "", 0, fmt.Errorf("too long")
	}
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a bare name, IPv4 address, or IPv6 address (with or
		// without brackets).
		host, ps = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), ""
	}
	port = defPort
	if ps != "" {
		port, err = strconv.Atoi(ps)
		if err != nil || port < 1 || port > 65535 {
			return "", 0, fmt.Errorf("port %q is not 1-65535", clip(ps, 10))
		}
	}
	if net.ParseIP(host) == nil && !dnsName.MatchString(host) {
		return "", 0, fmt.Errorf("%q is not a host name or IP address", clip(addr, 60))
	}
	return host, port, nil
}

// maxSecretBytes bounds a password file: a BMC password is at most 20
// bytes (IPMI) or a few hundred (Redfish).
const maxSecretBytes = 4096

// password resolves the reference. The error names the reference, never
// the content.
func (b *BMC) password() (string, error) {
	if b.PasswordEnv != "" {
		v, ok := os.LookupEnv(b.PasswordEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("%w: bmc.%s: environment variable %s is not set or empty", ErrConfig, keyPasswordEnv, b.PasswordEnv)
		}
		return v, nil
	}
	f, err := os.Open(b.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%w: bmc.%s: %v", ErrConfig, keyPasswordFile, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: bmc.%s: %s is not a regular file", ErrConfig, keyPasswordFile, b.PasswordFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: bmc.%s: reading %s failed", ErrConfig, keyPasswordFile, b.PasswordFile)
	}
	if len(data) > maxSecretBytes {
		return "", fmt.Errorf("%w: bmc.%s: %s is over %d bytes", ErrConfig, keyPasswordFile, b.PasswordFile, maxSecretBytes)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%w: bmc.%s: %s is empty", ErrConfig, keyPasswordFile, b.PasswordFile)
	}
	if strings.ContainsAny(s, "\n\x00") {
		return "", fmt.Errorf("%w: bmc.%s: %s holds more than one line", ErrConfig, keyPasswordFile, b.PasswordFile)
	}
	return s, nil
}

// Options tune a Controller. The zero value is usable.
type Options struct {
	// Timeout bounds every BMC request: one HTTP exchange, or one IPMI
	// command with its retransmissions and the session setup it may need;
	// default 20s. The caller's context bounds it further.
	Timeout time.Duration
	// Logger receives one line per BMC operation (never a password or
	// session token); nil is silent.
	Logger *slog.Logger
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 20 * time.Second
	}
	return o.Timeout
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Controller drives one host's power and next boot through its BMC. Every
// call is bounded by its context and by Options.Timeout per request. A
// Controller is safe for concurrent use, but calls to one BMC are
// serialized. Close it when done: it ends the BMC session.
type Controller interface {
	// PowerState asks the BMC whether the host is on.
	PowerState(ctx context.Context) (PowerState, error)
	// PowerOn turns the host on; a host already on stays on.
	PowerOn(ctx context.Context) error
	// PowerCycle restarts a host that is on, hard: IPMI chassis power
	// cycle; Redfish ForceRestart, else PowerCycle, as the system allows.
	PowerCycle(ctx context.Context) error
	// SetNextBoot makes the next boot, only, a network (PXE) boot in
	// mode. A BMC that refuses the mode flag is asked again without it;
	// the mode actually set is returned (BootAnyMode then). A refusal
	// wraps ErrBootOverride. Power the host on or cycle it soon after:
	// IPMI BMCs drop the override if no boot follows within 60 seconds.
	SetNextBoot(ctx context.Context, mode BootMode) (BootMode, error)
	// Close ends the session. Calls after Close fail.
	Close(ctx context.Context) error
}

// PowerState is a host's power as its BMC reports it.
type PowerState string

// The power states. Redfish's PoweringOn and PoweringOff are reported as
// such; IPMI knows only on and off.
const (
	StateOn          PowerState = "on"
	StateOff         PowerState = "off"
	StatePoweringOn  PowerState = "powering-on"
	StatePoweringOff PowerState = "powering-off"
	StateUnknown     PowerState = "unknown"
)

// Open validates b, resolves its password and returns its Controller. It
// touches no network: the session opens on the first call.
func Open(b BMC, o Options) (Controller, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	pw, err := b.password()
	if err != nil {
		return nil, err
	}
	if b.BootMode == "" {
		b.BootMode = BootUEFI
	}
	switch b.Type {
	case IPMI:
		return newIPMI(b, pw, o)
	default:
		return newRedfish(b, pw, o)
	}
}

// ModeOf is b's boot mode with the default applied.
func (b *BMC) ModeOf() BootMode {
	if b.BootMode == "" {
		return BootUEFI
	}
	return b.BootMode
}
