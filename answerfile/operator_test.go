package answerfile

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"# only a comment\n\n", nil},
		{"ssh-ed25519 AAAA a@b\n", []string{"ssh-ed25519 AAAA a@b"}},
		{"  ssh-rsa AAAB x \r\n# c\nssh-ed25519 AAAC y", []string{"ssh-rsa AAAB x", "ssh-ed25519 AAAC y"}},
	} {
		assert.Equal(t, tc.want, ParseKeys([]byte(tc.in)), "%q", tc.in)
	}
}

func TestSetCredentials(t *testing.T) {
	const hash = "$6$salt$abc"
	keys := []string{"ssh-ed25519 AAAA op@desk"}
	for _, tc := range []struct {
		name, hash string
		keys       []string
	}{
		{"hash and keys", hash, keys},
		{"keys only", "", keys},
		{"hash only", hash, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := DemoSpec(SchemePlain)
			s.SetCredentials(tc.hash, tc.keys)
			assert.Equal(t, tc.hash, s.Root.Password.Hash)
			assert.Empty(t, s.Root.Password.Plain, "the demo password is gone")
			assert.Equal(t, tc.keys, s.Root.SSHKeys)
			c := s.Credentials()
			assert.Empty(t, c.Demo, "no account keeps the demo password")
			assert.True(t, c.Own)
			for _, u := range s.Users {
				assert.Equal(t, tc.keys, u.SSHKeys)
				if tc.hash == "" {
					assert.NotEmpty(t, u.Password.Plain, "a random password")
					assert.NotEqual(t, DemoPassword, string(u.Password.Plain))
					assert.True(t, u.SudoNoPassword)
				} else {
					assert.Equal(t, tc.hash, u.Password.Hash)
				}
			}
		})
	}
}

func TestReportHandler(t *testing.T) {
	var got []*Report
	h := ReportHandler(1024, func(r *http.Request, rep *Report) error {
		if rep.Hostname == "refused" {
			return errors.New("refused by the caller")
		}
		got = append(got, rep)
		return nil
	})
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"status":"ok","hostname":"h","checks":[{"name":"a","ok":true}]}`, http.StatusNoContent},
		{`not json`, http.StatusBadRequest},
		{`{"status":"ok","hostname":"refused"}`, http.StatusBadRequest},
		{`{"status":"maybe"}`, http.StatusBadRequest},
		{`{"status":"ok","hostname":"` + strings.Repeat("a", 2048) + `"}`, http.StatusBadRequest},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/report", strings.NewReader(tc.body)))
		assert.Equal(t, tc.code, w.Code, tc.body)
	}
	require.Len(t, got, 1)
	assert.Equal(t, "h", got[0].Hostname)
}
