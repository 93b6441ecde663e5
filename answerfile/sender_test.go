package answerfile_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
)

func TestReportSender(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, path, remote string
		wantIP, wantMAC             string
		wantErr                     bool
	}{
		{name: "dashed MAC", pattern: "POST /api/report/{mac}", path: "/api/report/52-54-00-12-34-56", remote: "10.0.0.7:41000", wantIP: "10.0.0.7", wantMAC: "52:54:00:12:34:56"},
		{name: "colon MAC", pattern: "POST /api/report/{mac}", path: "/api/report/52:54:00:12:34:56", remote: "10.0.0.7:41000", wantIP: "10.0.0.7", wantMAC: "52:54:00:12:34:56"},
		{name: "no wildcard", pattern: "POST /api/report", path: "/api/report", remote: "10.0.0.7:41000", wantIP: "10.0.0.7"},
		{name: "mapped address", pattern: "POST /api/report", path: "/api/report", remote: "[::ffff:10.0.0.7]:41000", wantIP: "10.0.0.7"},
		{name: "IPv6", pattern: "POST /api/report", path: "/api/report", remote: "[fd00::7]:41000", wantIP: "fd00::7"},
		{name: "bad remote", pattern: "POST /api/report", path: "/api/report", remote: "pipe"},
		{name: "not a MAC", pattern: "POST /api/report/{mac}", path: "/api/report/web01", remote: "10.0.0.7:41000", wantIP: "10.0.0.7", wantErr: true},
		{name: "EUI-64", pattern: "POST /api/report/{mac}", path: "/api/report/02-00-5e-10-00-00-00-01", remote: "10.0.0.7:41000", wantIP: "10.0.0.7", wantErr: true},
		{name: "with token", pattern: "POST /api/report/{mac}/{token}", path: "/api/report/52-54-00-12-34-56/abc", remote: "10.0.0.7:41000", wantIP: "10.0.0.7", wantMAC: "52:54:00:12:34:56"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ip, mac string
			var err error
			mux := http.NewServeMux()
			mux.HandleFunc(tc.pattern, func(w http.ResponseWriter, r *http.Request) {
				a, hw, e := answerfile.ReportSender(r)
				if a.IsValid() {
					ip = a.String()
				}
				if hw != nil {
					mac = hw.String()
				}
				err = e
			})
			r := httptest.NewRequest(http.MethodPost, tc.path, nil)
			r.RemoteAddr = tc.remote
			mux.ServeHTTP(httptest.NewRecorder(), r)
			assert.Equal(t, tc.wantIP, ip)
			assert.Equal(t, tc.wantMAC, mac)
			if tc.wantErr {
				require.ErrorIs(t, err, answerfile.ErrReport)
				assert.Contains(t, err.Error(), "not a MAC address")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

func TestEventString(t *testing.T) {
	for _, tc := range []struct {
		ev   answerfile.Event
		want string
	}{
		{answerfile.Event{Type: "finish", Name: "subiquity/Install", Result: "SUCCESS"}, "finish subiquity/Install SUCCESS"},
		{answerfile.Event{Type: "start", Name: "subiquity/Install", Description: "installing"}, "start subiquity/Install"},
		{answerfile.Event{Type: "finish", Result: "FAIL"}, "finish FAIL"},
		{answerfile.Event{Result: "WARN"}, "WARN"},
		{answerfile.Event{}, ""},
	} {
		assert.Equal(t, tc.want, tc.ev.String())
	}
}

// A callback route whose path names the installing machine: the handler
// learns the sender's address and the MAC its answer file was made for.
func ExampleReportSender() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/report/{mac}", func(w http.ResponseWriter, r *http.Request) {
		ip, mac, err := answerfile.ReportSender(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Println("report from", ip, "for", mac)
		w.WriteHeader(http.StatusNoContent)
	})
	r := httptest.NewRequest(http.MethodPost, "/api/report/52-54-00-12-34-56", nil)
	r.RemoteAddr = "10.0.0.7:41000"
	mux.ServeHTTP(httptest.NewRecorder(), r)
	// Output: report from 10.0.0.7 for 52:54:00:12:34:56
}
