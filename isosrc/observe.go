package isosrc

import (
	"io"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"
)

// HTTPEvent describes one HTTP response once its handler has returned: the
// counterpart of tftpsrv.Event, for progress reporting and metrics.
type HTTPEvent struct {
	// Request is the request answered (its method, headers, context and
	// path values).
	Request *http.Request
	// RemoteAddr is the client, unmapped; zero when the server gave no
	// address in host:port form.
	RemoteAddr netip.AddrPort
	// Name is the request path cleaned, without its leading slash: the
	// name a file tree was asked for ("boot/linux").
	Name string
	// Status is the status code sent (200 when the handler set none, as
	// net/http sends).
	Status int
	// Bytes counts the body bytes written, those sent by sendfile(2)
	// included.
	Bytes int64
	// Duration is how long the handler took.
	Duration time.Duration
	// Err is the first error writing the body (the client went away), or
	// nil. A response with Err set was not received whole. The last bytes
	// of a body, which net/http sends from its buffer after the handler
	// returns, count as written: a small file counts once written there.
	Err error
}

// Served reports whether the response delivered content: not a HEAD, a
// status below 400, and the body written without error. It is what a boot
// server counts as a client's step.
func (ev HTTPEvent) Served() bool {
	return ev.Request != nil && ev.Request.Method != http.MethodHead && ev.Status < 400 && ev.Err == nil
}

// Observe returns a handler that serves with h and then calls fn with what
// was served. The step a boot client reached is the file it received, not
// the one it asked for: an answer file refused with 403, a kernel cut off
// half-way, a HEAD are not steps (see HTTPEvent.Served). Observe keeps
// h's access to sendfile(2) and to http.ResponseController.
func Observe(h http.Handler, fn func(HTTPEvent)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ow := &observedWriter{ResponseWriter: w}
		start := time.Now()
		if _, ok := w.(io.ReaderFrom); ok {
			h.ServeHTTP(&observedReaderFrom{ow}, r)
		} else {
			h.ServeHTTP(ow, r)
		}
		if ow.status == 0 {
			ow.status = http.StatusOK
		}
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		fn(HTTPEvent{
			Request:    r,
			RemoteAddr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
			Name:       strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/"),
			Status:     ow.status,
			Bytes:      ow.bytes,
			Duration:   time.Since(start),
			Err:        ow.err,
		})
	})
}

// observedWriter counts what a handler writes.
type observedWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	err    error
}

func (w *observedWriter) WriteHeader(code int) {
	// Informational headers (103 Early Hints) precede the real one.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.count(int64(n), err)
	return n, err
}

func (w *observedWriter) count(n int64, err error) {
	w.bytes += n
	if err != nil && w.err == nil {
		w.err = err
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observedReaderFrom passes ReadFrom on unchanged, so that the source
// (an *io.LimitedReader around a file) still reaches sendfile(2).
type observedReaderFrom struct{ *observedWriter }

func (w *observedReaderFrom) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
	w.count(n, err)
	return n, err
}
