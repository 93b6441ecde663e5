package chain

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// HTTPLimits bound what one HTTP client can hold of a boot server, which
// answers anyone on its network segment. The zero value means every
// default.
//
// Write deadlines: a fixed WriteTimeout long enough for a 4 GB ISO over a
// slow link (hours) would let any client keep a connection for hours
// without reading, and one short enough to matter would cut real
// downloads. So WriteTimeout bounds each step of progress instead: every
// GET and HEAD response (files, menus, answer files, the status page) moves
// the connection's write deadline WriteTimeout ahead before each chunk of
// at most 1 MiB it sends (through http.ResponseController, which keeps
// sendfile(2) for files). A client that keeps reading downloads for as long
// as it needs; one that stops for WriteTimeout, or reads slower than
// 1 MiB per WriteTimeout, is disconnected. Other methods (fleet's API) get
// WriteTimeout for the whole response.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default
	// 30 s.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no next
	// request. Default 60 s.
	IdleTimeout time.Duration
	// WriteTimeout bounds a response's progress, see above. Default 60 s.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Default 16 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request's body; reading beyond it fails.
	// Default 1 MiB (fleet's largest body, an install report, is below).
	MaxBodyBytes int64
	// MaxConns caps concurrent connections; further clients wait in the
	// kernel's accept queue, costing no file descriptor. Default:
	// DefaultMaxConns of the process's open-file limit.
	MaxConns int
}

// The defaults of HTTPLimits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxBodyBytes      = 1 << 20
	// ReservedFDs are the file descriptors kept out of the HTTP
	// connection cap: TFTP transfers (a socket and a file each), DHCP and
	// syslog sockets, the ISOs, the state and lease files.
	ReservedFDs = 256
	// contentChunk is the most a response sends per deadline step.
	contentChunk = 1 << 20
	maxPathBytes = 1024 // longer paths name nothing we serve: 404
)

// withDefaults fills in the zero fields.
func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxConns <= 0 {
		soft, _ := RaiseFileLimit()
		l.MaxConns = DefaultMaxConns(soft)
	}
	return l
}

// DefaultMaxConns is the HTTP connection cap for an open-file limit of
// soft: half of what is left after ReservedFDs (each connection may hold a
// socket and an open file), between 16 and 4096.
func DefaultMaxConns(soft uint64) int {
	n := 16
	if soft > ReservedFDs {
		n = int(min((soft-ReservedFDs)/2, 4096))
	}
	return max(n, 16)
}

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit (the Go
// runtime does so at start too, but only for its own process image) and
// returns the soft limit in force.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return lim.Cur, err
		}
		lim = raised
	}
	return lim.Cur, nil
}

// NewHTTPServer returns the examples' HTTP server for h with l's bounds:
// timeouts, header and body caps, and progress deadlines for GET and HEAD
// responses. Serve it on a listener from LimitListener.
func NewHTTPServer(h http.Handler, l HTTPLimits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           bounded(h, l),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		WriteTimeout:      l.WriteTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// LimitListener caps ln's concurrent connections at l.MaxConns: Accept
// waits while that many are open. Unlike x/net's netutil.LimitListener, the
// connections it returns keep *net.TCPConn's ReadFrom, which net/http needs
// to send files with sendfile(2); behind a plain net.Conn wrapper every
// kernel and initrd went through a user-space copy.
func LimitListener(ln net.Listener, l HTTPLimits) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, l.withDefaults().MaxConns), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	release := func() { <-l.sem }
	if tc, ok := c.(*net.TCPConn); ok {
		return &limitedTCPConn{TCPConn: tc, release: release}, nil
	}
	return &limitedConn{Conn: c, release: release}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedTCPConn frees its slot once on Close and keeps every method of
// *net.TCPConn, ReadFrom (sendfile) included.
type limitedTCPConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *limitedTCPConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(c.release)
	return err
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// bounded caps request bodies and gives GET and HEAD responses their
// progress deadlines.
func bounded(h http.Handler, l HTTPLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, l.MaxBodyBytes)
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			pw := &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), step: l.WriteTimeout}
			if _, ok := w.(io.ReaderFrom); ok {
				h.ServeHTTP(&progressReaderFrom{pw}, r)
				return
			}
			w = pw
		}
		h.ServeHTTP(w, r)
	})
}

// progressWriter moves the connection's deadlines one step ahead before
// each chunk it passes on. The read deadline moves too: net/http reads in
// the background while a handler runs, and a read deadline passing there
// would cancel the request's context in the middle of a long download.
type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	step time.Duration
}

func (p *progressWriter) extend() {
	t := time.Now().Add(p.step)
	_ = p.rc.SetWriteDeadline(t)
	_ = p.rc.SetReadDeadline(t)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	var n int
	for len(b) > 0 {
		c := min(len(b), contentChunk)
		p.extend()
		m, err := p.ResponseWriter.Write(b[:c])
		n += m
		if err != nil {
			return n, err
		}
		b = b[c:]
	}
	return n, nil
}

// Unwrap lets http.ResponseController reach the connection.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// progressReaderFrom keeps the underlying writer's ReadFrom (sendfile),
// one chunk per deadline step. It keeps a single *io.LimitedReader around
// the source, the one shape sendfile looks through.
type progressReaderFrom struct{ *progressWriter }

func (p *progressReaderFrom) ReadFrom(src io.Reader) (int64, error) {
	rf := p.ResponseWriter.(io.ReaderFrom)
	inner, limit := src, int64(-1)
	if lr, ok := src.(*io.LimitedReader); ok {
		if lr.N <= 0 {
			return 0, nil
		}
		inner, limit = lr.R, lr.N
		defer func() { lr.N = limit }()
	}
	var total int64
	for limit != 0 {
		c := int64(contentChunk)
		if limit > 0 {
			c = min(c, limit)
		}
		p.extend()
		n, err := rf.ReadFrom(&io.LimitedReader{R: inner, N: c})
		total += n
		if limit > 0 {
			limit -= n
		}
		if err != nil {
			return total, err
		}
		if n < c {
			break // the source ended
		}
	}
	return total, nil
}

// ErrBadPath is a request path that names nothing servable.
var ErrBadPath = errors.New("bad path")

// CheckPath sorts out request paths no file can have before any file
// system sees them: http.StatusBadRequest for NUL or other control
// characters and invalid UTF-8, http.StatusNotFound for a path over 1024
// bytes or with an element over 255 (no file has such a name). 0 is fine.
func CheckPath(p string) int {
	if !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return http.StatusBadRequest
	}
	if len(p) > maxPathBytes {
		return http.StatusNotFound
	}
	for _, e := range strings.Split(p, "/") {
		if len(e) > 255 {
			return http.StatusNotFound
		}
	}
	return 0
}

// ContentOnly guards h, a handler of files and generated content: GET and
// HEAD only (405 with Allow otherwise) and paths that pass CheckPath.
func ContentOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "pxekit: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !GoodPath(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// GoodPath answers a request whose path fails CheckPath (and says false).
func GoodPath(w http.ResponseWriter, r *http.Request) bool {
	switch CheckPath(r.URL.Path) {
	case 0:
		return true
	case http.StatusBadRequest:
		http.Error(w, "pxekit: bad path", http.StatusBadRequest)
	default:
		http.NotFound(w, r)
	}
	return false
}
