package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reinstall API wipes disks at their next boot, and reports write
// state: who may call them is part of the gate.
func TestAPIAccess(t *testing.T) {
	f, store := newTestFleet(t, UnknownLocal, false)
	f.apiToken = "s3cret"
	h := f.HTTPHandler()
	do := func(method, target, from, auth, body string) int {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.RemoteAddr = from
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	reinstall := "/api/hosts/web01/reinstall"
	for _, tc := range []struct {
		name, from, auth string
		token            string
		want             int
	}{
		{"loopback needs no token", "127.0.0.1:4000", "", "s3cret", http.StatusOK},
		{"loopback v6", "[::1]:4000", "", "", http.StatusOK},
		{"network with the token", "10.0.0.7:4000", "Bearer s3cret", "s3cret", http.StatusOK},
		{"network, wrong token", "10.0.0.7:4000", "Bearer nope", "s3cret", http.StatusUnauthorized},
		{"network, no header", "10.0.0.7:4000", "", "s3cret", http.StatusUnauthorized},
		{"network, server without token", "10.0.0.7:4000", "Bearer s3cret", "", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.apiToken = tc.token
			assert.Equal(t, tc.want, do(http.MethodPost, reinstall, tc.from, tc.auth, ""))
		})
	}

	report := `{"hostname":"x","os":"debian-12","status":"ok","checks":[]}`
	// A MAC that is neither listed nor installing cannot create state.
	assert.Equal(t, http.StatusNotFound, do(http.MethodPost, "/api/report/52-54-00-de-ad-01", "10.0.0.9:1", "", report))
	_, seen := store.Get("52:54:00:de:ad:01")
	assert.False(t, seen)
	// A listed host can.
	require.Equal(t, http.StatusNoContent, do(http.MethodPost, "/api/report/"+macPath(macWeb), "10.0.0.9:1", "", report))
	rec, _ := store.Get(macWeb)
	assert.Equal(t, Done, rec.State)
}
