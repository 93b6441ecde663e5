package answerfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Report stages: which part of a machine's life a report describes.
const (
	// StageInstalled is sent by the installer at the end of the install,
	// before its reboot. A report that names no stage is this one.
	StageInstalled = "installed"
	// StageBooted is sent once by the installed system on its first boot
	// from disk (see FirstBootUnit).
	StageBooted = "booted"
)

// Report statuses.
const (
	StatusOK      = "ok"      // every check passed
	StatusFailed  = "failed"  // at least one check failed
	StatusUnknown = "unknown" // the post-install script left no report
)

// Bounds ParseReport applies. Longer strings are cut (at a character
// boundary); more checks are an error.
const (
	MaxReportHostname = 253 // a DNS name
	MaxReportOS       = 64
	MaxReportCheck    = 200 // one check's name
	MaxReportChecks   = 512
	MaxReportEvent    = 256 // each field of an installer progress event
)

// Check is one check a report carries.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// Report is the body of a completion report (see the package
// documentation for the requests): the installer's at the end of the
// install, or the installed system's on its first boot.
type Report struct {
	// Stage is StageInstalled or StageBooted.
	Stage string `json:"stage"`
	// Status is StatusOK, StatusFailed or StatusUnknown.
	Status   string  `json:"status"`
	Hostname string  `json:"hostname,omitempty"`
	OS       string  `json:"os,omitempty"`
	Checks   []Check `json:"checks,omitempty"`
	// Event is set, and the fields above are empty, when the body is one
	// of the installer's own progress events (Ubuntu with
	// Callback.Events), not a report.
	Event *Event `json:"-"`
}

// Failed returns the names of the checks that did not pass.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

// Event is an installer progress event posted to the callback URL
// (subiquity's reporting webhook). Its fields are bounded like a report's.
type Event struct {
	Type        string // "start" or "finish"
	Name        string // e.g. "subiquity/Install/install/curthooks"
	Description string
	Result      string // "SUCCESS", "FAIL" or "WARN" on finish events
}

// ErrReport is wrapped by every error ParseReport returns.
var ErrReport = errors.New("answerfile: bad report")

// ErrReportTooLarge means the body is longer than the limit given to
// ParseReport; errors.Is(err, ErrReport) holds too.
var ErrReportTooLarge = fmt.Errorf("%w: body too large", ErrReport)

// wire is what is decoded: a report and an event share the object.
type wire struct {
	Stage       *string         `json:"stage"`
	Status      *string         `json:"status"`
	Hostname    string          `json:"hostname"`
	OS          string          `json:"os"`
	Checks      json.RawMessage `json:"checks"`
	EventType   string          `json:"event_type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Result      string          `json:"result"`
}

// ParseReport reads one report (or installer progress event) of at most
// limit bytes from r. Unknown keys are ignored (installers' events carry
// many). Strings come back printable (control characters dropped, invalid
// UTF-8 replaced) and cut to the bounds above; every error wraps ErrReport
// and names what is wrong, never echoing more than a short excerpt.
func ParseReport(r io.Reader, limit int64) (*Report, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrReport, limit)
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError // a server's http.MaxBytesReader cut it
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w (over %d bytes)", ErrReportTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: reading: %v", ErrReport, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (over %d bytes)", ErrReportTooLarge, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var w wire
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %s", ErrReport, jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrReport)
	}
	if w.EventType != "" {
		return &Report{Event: &Event{
			Type: clean(w.EventType, MaxReportEvent), Name: clean(w.Name, MaxReportEvent),
			Description: clean(w.Description, MaxReportEvent), Result: clean(w.Result, MaxReportEvent),
		}}, nil
	}
	rep := &Report{Stage: StageInstalled, Hostname: clean(w.Hostname, MaxReportHostname), OS: clean(w.OS, MaxReportOS)}
	if w.Stage != nil {
		switch *w.Stage {
		case StageInstalled, StageBooted:
			rep.Stage = *w.Stage
		default:
			return nil, fmt.Errorf("%w: stage %q: want %s or %s", ErrReport, clean(*w.Stage, 32), StageInstalled, StageBooted)
		}
	}
	if w.Status == nil {
		return nil, fmt.Errorf("%w: status missing", ErrReport)
	}
	switch *w.Status {
	case StatusOK, StatusFailed, StatusUnknown:
		rep.Status = *w.Status
	default:
		return nil, fmt.Errorf("%w: status %q: want ok, failed or unknown", ErrReport, clean(*w.Status, 32))
	}
	if len(w.Checks) > 0 && string(w.Checks) != "null" {
		var checks []struct {
			Name *string `json:"name"`
			OK   *bool   `json:"ok"`
		}
		if err := json.Unmarshal(w.Checks, &checks); err != nil {
			return nil, fmt.Errorf("%w: checks: want a list of {\"name\",\"ok\"}: %s", ErrReport, jsonErr(err))
		}
		if len(checks) > MaxReportChecks {
			return nil, fmt.Errorf("%w: %d checks, at most %d", ErrReport, len(checks), MaxReportChecks)
		}
		for i, c := range checks {
			if c.Name == nil || c.OK == nil {
				return nil, fmt.Errorf("%w: checks[%d]: needs name and ok", ErrReport, i)
			}
			rep.Checks = append(rep.Checks, Check{Name: clean(*c.Name, MaxReportCheck), OK: *c.OK})
		}
	}
	if rep.Status == StatusOK && len(rep.Failed()) > 0 {
		return nil, fmt.Errorf("%w: status ok with failed checks", ErrReport)
	}
	return rep, nil
}

// jsonErr keeps a decoder's message short; it never quotes the body.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s: a JSON %s where %s belongs", te.Field, te.Value, te.Type)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated"
	}
	return "malformed"
}

// clean makes s printable (no control characters, valid UTF-8) and at
// most max bytes, cut at a character boundary.
func clean(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
