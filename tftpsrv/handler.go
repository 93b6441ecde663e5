package tftpsrv

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"strings"
)

// A Handler answers one read request. It either writes generated content to
// w, hands over content with w.ServeContent, or refuses with w.Error; nothing
// is sent until it returns. A handler that does none of these answers "file
// not found", so forgetting to answer can never leak a socket.
type Handler interface {
	ServeTFTP(w ResponseWriter, r *Request)
}

// HandlerFunc adapts an ordinary function to Handler.
type HandlerFunc func(w ResponseWriter, r *Request)

// ServeTFTP calls f(w, r).
func (f HandlerFunc) ServeTFTP(w ResponseWriter, r *Request) { f(w, r) }

// ResponseWriter collects a handler's answer.
type ResponseWriter interface {
	// Write appends generated content (a menu, a config file). It is kept
	// in memory, so its length is the exact size answered to tsize.
	io.Writer
	// ServeContent sends content of the given size (negative when unknown;
	// tsize is then taken from io.Seeker if content offers it). When
	// content is an io.ReaderAt it is read through a private offset, so one
	// shared file may back many transfers. The server closes content after
	// the transfer when it is an io.Closer.
	ServeContent(content io.Reader, size int64)
	// Error refuses the request. *Error chooses its own code and message;
	// errors matching fs.ErrNotExist answer code 1, fs.ErrPermission and
	// ErrInvalidName code 2, anything else code 0 with a fixed text. The
	// error itself is logged, never sent.
	Error(err error)
}

// Request is one read request as a handler sees it.
type Request struct {
	// Name is the cleaned name (see CleanName): slash-separated, without a
	// leading slash, valid for io/fs.
	Name string
	// RawName is the name exactly as the client sent it, for logs.
	RawName string
	// RemoteAddr is the client's address and port; per-host content (menus
	// chosen by the client's IP) keys on it.
	RemoteAddr netip.AddrPort
	// LocalAddr is the address the request was sent to, when the socket
	// reports it (it does for sockets made by Listen and ListenAndServe).
	LocalAddr netip.Addr
	// Options are the options the client asked for, names lower-cased.
	Options map[string]string

	ctx context.Context
}

// Context is cancelled when the transfer ends, when the server is closed or
// shuts down past its deadline, and, with cause ErrStalled
// (context.Cause), when the transfer is given up after
// Server.StallTimeout without progress. A handler that may wait (on a
// backend, a lock, a slow disk) should stop waiting once it is done.
func (r *Request) Context() context.Context {
	if r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// WithContext returns a shallow copy of r whose Context is ctx, as
// net/http's Request.WithContext: a handler that wraps another (a timeout,
// a tracing span) narrows the context the inner handler sees without
// touching the server's. ctx must not be nil.
func (r *Request) WithContext(ctx context.Context) *Request {
	if ctx == nil {
		panic("tftpsrv: nil context")
	}
	r2 := *r
	r2.ctx = ctx
	return &r2
}

// WithName returns a copy of r asking for another file: Name is name after
// CleanName, while the context, the addresses and RawName (for logs) are
// kept and Options is copied, so the handler it is passed to may change it
// freely. It is how one handler hands a request on under another name (an
// alias, a per-host file chosen by address, a fallback), as StripPrefix does
// for prefixes. A name CleanName refuses is an error wrapping
// ErrInvalidName.
func (r *Request) WithName(name string) (*Request, error) {
	clean, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	r2 := *r
	r2.Name = clean
	r2.Options = maps.Clone(r.Options)
	return &r2, nil
}

// StripPrefix returns a handler that serves requests by removing prefix
// from the cleaned Request.Name and calling h, as net/http.StripPrefix
// does for URL paths. It lets one tree be published under a directory that
// does not exist in it: several distributions' ISO images side by side,
// each behind its own prefix on a ServeMux.
//
// The prefix is matched as a string against Name, a leading "/" of prefix
// being ignored since names have none. What remains, without a leading "/",
// is the name h sees; RawName stays as the client sent it, for logs.
// Requests whose name lacks the prefix, or is nothing more than it, get
// "file not found".
func StripPrefix(prefix string, h Handler) Handler {
	prefix = strings.TrimLeft(prefix, "/")
	if prefix == "" {
		return h
	}
	return HandlerFunc(func(w ResponseWriter, r *Request) {
		rest, ok := strings.CutPrefix(r.Name, prefix)
		rest = strings.TrimPrefix(rest, "/")
		if !ok || rest == "" || !fs.ValidPath(rest) {
			w.Error(fs.ErrNotExist)
			return
		}
		r2 := *r
		r2.Name = rest
		h.ServeTFTP(w, &r2)
	})
}

// response implements ResponseWriter.
type response struct {
	buf     bytes.Buffer
	wrote   bool
	content io.Reader
	size    int64
	err     error
}

func (w *response) Write(p []byte) (int, error) {
	w.wrote = true
	return w.buf.Write(p)
}

func (w *response) ServeContent(content io.Reader, size int64) {
	if w.content != nil && w.content != content {
		closeContent(w.content)
	}
	w.content, w.size = content, size
}

func (w *response) Error(err error) {
	if err == nil {
		return
	}
	w.err = err
}

func closeContent(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		_ = c.Close()
	}
}
