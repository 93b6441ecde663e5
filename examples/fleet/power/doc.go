// Package power turns hosts on and sets their next boot to the network
// through their BMC, for fleet's lights-out installs.
//
// A BMC is described by type (ipmi or redfish), address, user and a
// password reference (an environment variable or a file, read by Open,
// never held in the description, never logged, never put into an error).
// Open returns a Controller: PowerState, PowerOn, PowerCycle, SetNextBoot
// (network, once, UEFI or legacy) and Close, each bounded by its context
// and by Options.Timeout per request. Failures wrap one of the sentinel
// errors (ErrUnreachable, ErrBusy, ErrAuth, ErrTLS, ErrBootOverride,
// ErrUnsupported, ErrProtocol, ErrConfig); Retry retries only the
// transient ones, with exponential backoff and a bound.
//
// IPMI is IPMI 2.0 over LAN (RMCP+) through github.com/bougou/go-ipmi:
// Get Chassis Status, Chassis Control (power up, power cycle) and Set
// System Boot Options parameter 5 (boot flags valid, next boot only,
// device PXE, EFI bit for UEFI). Cipher suite 17 is tried first and 3
// only when the BMC refuses 17's algorithms (see BMC.CipherSuite). A BMC
// that refuses the boot flags with the EFI bit is asked again without it.
//
// Redfish is a small client over net/http: service root, a session
// (POST to the SessionService's Sessions, X-Auth-Token; HTTP basic
// authentication when the service has no SessionService), the one
// ComputerSystem (or BMC.SystemID), a PATCH of Boot
// {BootSourceOverrideTarget: Pxe, BootSourceOverrideEnabled: Once,
// BootSourceOverrideMode: UEFI|Legacy} read back afterwards, the
// ComputerSystem.Reset action with a ResetType the system allows, and a
// logout at Close. Certificates are verified against the system roots, a
// CA file, or a pinned SHA-256 fingerprint; redirects are not followed;
// every body is bounded (MaxRedfishBody) and every resource path the
// service names must stay under /redfish/v1 of the same service.
//
// Scheduler applies "PXE once, then power on (or power-cycle when on)"
// to many hosts, at most Parallel at once, with one Result per host; its
// CheckOnly mode only reads power states. Decide is the policy.
//
// What is tested here, and what is not: no real BMC hardware was used.
// The Redfish client is tested against an httptest TLS server serving
// hand-written resources that follow the Redfish schemas (ServiceRoot,
// SessionService, Systems, ComputerSystem with Boot and Actions), which
// applies resets and boot PATCHes as the specification describes; the
// tests assert the exact requests. The IPMI client is tested against
// OpenIPMI's ipmi_sim BMC simulator on 127.0.0.1 (skipped when ipmi_sim
// is absent): session setup including the fallback from cipher suite 17
// (which ipmi_sim 2.0.33 refuses) to 3, wrong password, unknown user, an
// Operator-only account, power status, on, off and cycle, the
// simulator's refusal of the boot flags, and, with a chassis-control
// script standing in for the board, the PXE device selector reaching the
// BMC and the scheduler's order (override, then power). The EFI bit's
// effect is not observable there: ipmi_sim passes only the device on.
// Real BMCs differ from both in ways only hardware shows (OEM quirks,
// ETag rules, slow task-based PATCH), which is why SetNextBoot reads the
// override back and why every failure names what the BMC said.
package power
