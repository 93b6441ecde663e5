package answerfile

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReport(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name, body string
		want       *Report
		err        string
	}{
		{"installer report, no stage", `{"hostname":"web01","os":"rocky-9.0","status":"ok","checks":[{"name":"user ops","ok":true}]}`,
			&Report{Stage: StageInstalled, Status: StatusOK, Hostname: "web01", OS: "rocky-9.0", Checks: []Check{{"user ops", true}}}, ""},
		{"booted, failed check", `{"stage":"booted","status":"failed","checks":[{"name":"sshd listening","ok":false}]}`,
			&Report{Stage: StageBooted, Status: StatusFailed, Checks: []Check{{"sshd listening", false}}}, ""},
		{"unknown, null checks", `{"status":"unknown","checks":null}`, &Report{Stage: StageInstalled, Status: StatusUnknown}, ""},
		{"control characters dropped", "{\"status\":\"ok\",\"hostname\":\"web\\u001b[31m01\\n\"}", &Report{Stage: StageInstalled, Status: StatusOK, Hostname: "web[31m01"}, ""},
		{"long hostname cut", `{"status":"ok","hostname":"` + long + `"}`, &Report{Stage: StageInstalled, Status: StatusOK, Hostname: long[:MaxReportHostname]}, ""},
		{"event", `{"event_type":"finish","name":"subiquity/Install","result":"SUCCESS","origin":"curtin","files":[]}`,
			&Report{Event: &Event{Type: "finish", Name: "subiquity/Install", Result: "SUCCESS"}}, ""},
		{"bad status", `{"status":"great"}`, nil, `status "great": want ok, failed or unknown`},
		{"no status", `{"hostname":"x"}`, nil, "status missing"},
		{"bad stage", `{"stage":"rebooted","status":"ok"}`, nil, `stage "rebooted"`},
		{"truncated", `{"status":`, nil, "not a JSON object: truncated"},
		{"syntax", `{"status" "ok"}`, nil, "syntax error at byte"},
		{"not an object", `[1,2]`, nil, "not a JSON object"},
		{"trailing data", `{"status":"ok"} {"status":"ok"}`, nil, "data after the JSON object"},
		{"checks not a list", `{"status":"ok","checks":{"a":1}}`, nil, "checks: want a list"},
		{"check without ok", `{"status":"failed","checks":[{"name":"x"}]}`, nil, "checks[0]: needs name and ok"},
		{"ok with a failed check", `{"status":"ok","checks":[{"name":"x","ok":false}]}`, nil, "status ok with failed checks"},
		{"too many checks", `{"status":"ok","checks":[` + strings.TrimSuffix(strings.Repeat(`{"name":"a","ok":true},`, MaxReportChecks+1), ",") + `]}`, nil, "513 checks, at most 512"},
		{"empty", ``, nil, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReport(strings.NewReader(tc.body), 64<<10)
			if tc.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrReport)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseReportLimit(t *testing.T) {
	body := `{"status":"ok","hostname":"` + strings.Repeat("a", 5000) + `"}`
	_, err := ParseReport(strings.NewReader(body), 4096)
	assert.ErrorIs(t, err, ErrReportTooLarge)
	assert.ErrorIs(t, err, ErrReport)
	assert.NotContains(t, err.Error(), "aaaa", "the body is not echoed")

	// Behind a server's http.MaxBytesReader, the same error.
	srv := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	_, err = ParseReport(http.MaxBytesReader(srv, r.Body, 4096), 1<<20)
	assert.ErrorIs(t, err, ErrReportTooLarge)

	_, err = ParseReport(strings.NewReader(`{"status":"ok"}`), 0)
	assert.ErrorIs(t, err, ErrReport)
	_, err = ParseReport(errReader{}, 100)
	assert.ErrorIs(t, err, ErrReport)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// FuzzParseReport: any body gives a report within the bounds or an
// ErrReport, never a panic.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`{"hostname":"web01","os":"rocky-9.0","status":"ok","checks":[{"name":"user ops","ok":true}]}`,
		`{"stage":"booted","status":"failed","checks":[{"name":"sshd listening","ok":false}]}`,
		`{"event_type":"start","name":"x","description":"y"}`,
		`{"status":"unknown","checks":null}`,
		"{\"status\":\"ok\",\"hostname\":\"\\u0000\\ud800\xff\"}",
		`{"status":`, `[]`, `null`, `""`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseReport(strings.NewReader(string(data)), 4096)
		if err != nil {
			if !errors.Is(err, ErrReport) {
				t.Fatalf("error %v does not wrap ErrReport", err)
			}
			if rep != nil {
				t.Fatal("a report with an error")
			}
			return
		}
		strs := []string{rep.Stage, rep.Status, rep.Hostname, rep.OS}
		if rep.Event != nil {
			strs = append(strs, rep.Event.Type, rep.Event.Name, rep.Event.Description, rep.Event.Result)
			for _, s := range strs[4:] {
				if len(s) > MaxReportEvent {
					t.Fatalf("event field of %d bytes", len(s))
				}
			}
		} else {
			if rep.Stage != StageInstalled && rep.Stage != StageBooted {
				t.Fatalf("stage %q", rep.Stage)
			}
			if len(rep.Hostname) > MaxReportHostname || len(rep.OS) > MaxReportOS || len(rep.Checks) > MaxReportChecks {
				t.Fatalf("bounds: %d %d %d", len(rep.Hostname), len(rep.OS), len(rep.Checks))
			}
		}
		for _, c := range rep.Checks {
			strs = append(strs, c.Name)
			if len(c.Name) > MaxReportCheck {
				t.Fatalf("check name of %d bytes", len(c.Name))
			}
		}
		for _, s := range strs {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q", s)
			}
			for _, r := range s {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
					t.Fatalf("control character in %q", s)
				}
			}
		}
	})
}
