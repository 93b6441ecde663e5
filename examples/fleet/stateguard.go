package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// guardState wraps the fleet's HTTP handler so that a request whose state
// change could not be recorded gets no success: an answer file whose fetch
// was not recorded as the install's start is withheld (503 when the state
// store did not answer, 403 when it says the host finished meanwhile), and
// a report or re-arm that was not saved because the store did not answer
// gets 503 rather than 500, with Retry-After, so that the installer's
// retry delivers it later.
//
// The answers concerned are small; they are buffered until the handler
// returns, then sent or replaced by the refusal. Every other request
// (boot loaders, menus, media, status) passes through untouched: they
// change no state and keep being served while the store is away.
func (f *fleet) guardState(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject := f.stateSubject(r)
		if subject == "" {
			next.ServeHTTP(w, r)
			return
		}
		mark := f.gate.failureMark()
		bw := &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(bw, r)
		if err := f.gate.failedSince(subject, mark); err != nil {
			switch {
			case errors.Is(err, ErrStateUnavailable):
				w.Header().Set("Retry-After", "10")
				http.Error(w, "pxekit: install state store unavailable; retry later", http.StatusServiceUnavailable)
				return
			case errors.Is(err, ErrNotAllowed):
				http.Error(w, "pxekit: "+err.Error(), http.StatusForbidden)
				return
			}
			if bw.code < 400 { // a failure the handler did not see
				http.Error(w, "pxekit: state not saved; see the server log", http.StatusInternalServerError)
				return
			}
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		if bw.code == 0 {
			bw.code = http.StatusOK
		}
		w.WriteHeader(bw.code)
		w.Write(bw.body.Bytes())
	})
}

// stateSubject names what a request changes in the state, as the gate
// records failures: the MAC of an answer file (GET) or a report, or
// api/hosts/NAME of a re-arm; "" for requests that change nothing.
func (f *fleet) stateSubject(r *http.Request) string {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(name, "hosts/"):
		if st, ok := f.stage(name); !ok || st != StageAnswer {
			return ""
		}
		mac, _, _ := strings.Cut(strings.TrimPrefix(name, "hosts/"), "/")
		if hw, ok := parseMAC(mac); ok {
			return hw.String()
		}
	case r.Method == http.MethodPost && strings.HasPrefix(name, "api/report/"):
		mac, _, _ := strings.Cut(strings.TrimPrefix(name, "api/report/"), "/")
		if hw, ok := parseMAC(mac); ok {
			return hw.String()
		}
	case r.Method == http.MethodPost && strings.HasPrefix(name, "api/hosts/") && strings.HasSuffix(name, "/reinstall"):
		return strings.TrimSuffix(name, "/reinstall")
	}
	return ""
}

// bufferedResponse keeps a response until guardState decides on it.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// maxPresize caps the body size ReadFrom reserves from a Content-Length.
const maxPresize = 1 << 20

// ReadFrom takes the body in one piece, reserved from the length the
// handler announced (http.ServeContent does before it copies). Through
// Write, the copy went via a buffer of io.Copy's as large as the file (up
// to 32 KiB) into the body: twice an answer file's size per request, with
// 200 installers fetching theirs at once.
func (b *bufferedResponse) ReadFrom(r io.Reader) (int64, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	if n, err := strconv.ParseInt(b.header.Get("Content-Length"), 10, 64); err == nil && n > 0 && n <= maxPresize {
		// MinRead more: bytes.Buffer.ReadFrom grows the buffer when
		// less than that is free, even when the reader is at its end.
		b.body.Grow(int(n) + bytes.MinRead)
	}
	return b.body.ReadFrom(r)
}
