package isosrc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Handler returns an HTTP handler that serves the image as
// http.FileServerFS(img) does (directory listings, ranges, conditional
// requests), but sends regular files with sendfile(2): each request gets
// its own descriptor of the image file, positioned on the file's extent and
// handed only to http.ServeContent, which always bounds the copy to the
// file's size. Images not opened by Open from a path, multi-extent files and
// directories are served by http.FileServerFS(img).
func (img *Image) Handler() http.Handler {
	return &handler{img: img, fallback: http.FileServerFS(img)}
}

type handler struct {
	img      *Image
	fallback http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	name := strings.TrimPrefix(path.Clean(upath), "/")
	// FileServer's redirects (".../index.html", directories) stay its own.
	if h.img.file == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) ||
		name == "" || strings.HasSuffix(upath, "/") || strings.HasSuffix(upath, "/index.html") {
		h.fallback.ServeHTTP(w, r)
		return
	}
	n, err := h.img.resolve("open", name, true)
	if err != nil || !n.mode.IsRegular() || n.err != nil || len(n.ext) != 1 {
		h.fallback.ServeHTTP(w, r)
		return
	}
	sr, err := h.img.sendfileReader(n)
	if err != nil {
		h.fallback.ServeHTTP(w, r)
		return
	}
	defer sr.f.Close()
	http.ServeContent(w, r, path.Base(name), n.mtime, sr)
}

// sendfileReader opens a new open-file description of the image (so that
// its offset is private) via /proc/self/fd: the same inode even if the path
// was replaced since Open.
func (img *Image) sendfileReader(n *node) (*boundedFile, error) {
	raw, err := img.file.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd uintptr
	if err := raw.Control(func(f uintptr) { fd = f }); err != nil {
		return nil, err
	}
	f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, err
	}
	b := &boundedFile{f: f, base: n.ext[0].off, size: n.size}
	if _, err := f.Seek(b.base, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// boundedFile is one file of the image as a ReadSeeker over a private
// descriptor. It offers SyscallConn so net/http can use sendfile; that is
// only safe because the value never leaves ServeHTTP, where every copy is
// an io.CopyN bounded by the size Seek reports.
type boundedFile struct {
	f          *os.File
	base, size int64
	pos        int64
}

func (b *boundedFile) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if rest := b.size - b.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.f.Read(p)
	b.pos += int64(n)
	if errors.Is(err, io.EOF) && b.pos < b.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *boundedFile) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.pos + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("isosrc: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("isosrc: negative position")
	}
	if _, err := b.f.Seek(b.base+min(abs, b.size), io.SeekStart); err != nil {
		return 0, err
	}
	b.pos = abs
	return abs, nil
}

// SyscallConn exposes the descriptor to net's sendfile path.
func (b *boundedFile) SyscallConn() (syscall.RawConn, error) { return b.f.SyscallConn() }

// HTTPLimits bound what one HTTP client can hold of a boot server, which
// answers anyone on its network segment. The zero value means every
// default.
//
// Write deadlines: a fixed WriteTimeout long enough for a 4 GB ISO over a
// slow link (hours) would let any client keep a connection for hours
// without reading, and one short enough to matter would cut real
// downloads. So WriteTimeout bounds each step of progress instead: every
// GET and HEAD response moves the connection's write deadline WriteTimeout
// ahead before each chunk of at most 1 MiB it sends (through
// http.ResponseController, in a way that keeps sendfile(2) for files). A
// client that keeps reading downloads for as long as it needs; one that
// stops for WriteTimeout, or reads slower than 1 MiB per WriteTimeout, is
// disconnected. Responses to other methods (an API's POST) get WriteTimeout
// for the whole response.
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
	// connection cap for the rest of a boot server: TFTP transfers (a
	// socket and a file each), DHCP and log sockets, the ISOs, state
	// files.
	ReservedFDs = 256
)

const (
	// contentChunk is the most a response sends per deadline step.
	contentChunk = 1 << 20
	// maxPathBytes: longer request paths name nothing served (404).
	maxPathBytes = 1024
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
// soft: half of what is left after ReservedFDs, because each connection
// may hold a socket and an open file, between 16 and 4096.
func DefaultMaxConns(soft uint64) int {
	n := 16
	if soft > ReservedFDs {
		n = int(min((soft-ReservedFDs)/2, 4096))
	}
	return max(n, 16)
}

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the soft limit in force, which sizes DefaultMaxConns. (Go's os
// package raises it at start on Linux too, but does not tell the number.)
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

// NewHTTPServer returns an HTTP server for h with l's bounds: timeouts,
// header and body caps, and progress deadlines for GET and HEAD responses
// (see HTTPLimits). Serve it on a listener from LimitListener, which caps
// connections without hiding sendfile(2).
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
// waits while that many are open, so further clients wait in the kernel's
// accept queue. Unlike x/net's netutil.LimitListener, the connections it
// returns for a TCP listener keep *net.TCPConn's ReadFrom, which net/http
// needs to send files with sendfile(2); behind a plain net.Conn wrapper
// every kernel and initrd goes through a user-space copy. Close ends a
// waiting Accept.
//
// A TCP connection its client closed first is closed with a reset rather
// than a FIN once the client has acknowledged everything sent on it
// (Linux; elsewhere as usual). Nothing is lost — the client holds all of
// it and wants no more — but the server keeps no state for the
// connection's four-tuple, and that matters for GRUB: it closes its HTTP
// connection after reading the initrd and boots the kernel at once, so
// the server's FIN is never acknowledged and a graceful close leaves the
// server in LAST_ACK, retransmitting, for up to two minutes. GRUB 2.06
// numbers its source ports from a fixed 21550 in every boot, so a machine
// rebooted within those minutes (a reinstall) opens its initrd
// connection on the same four-tuple; the server answers that SYN with an
// ACK of the old connection, which GRUB's TCP cannot handle, and the
// initrd fails ("connection timeout"), leaving the kernel to panic
// without a root file system.
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
// one chunk per deadline step. Each chunk is a single *io.LimitedReader
// around the source itself, the one shape net's sendfile looks through.
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

// CheckPath sorts out request paths no file can have before any file
// system sees them: http.StatusBadRequest for NUL or other control
// characters and invalid UTF-8, http.StatusNotFound for a path over 1024
// bytes or with an element over 255 (no file system has such names). 0
// means the path may be looked up.
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
// HEAD only (405 with Allow otherwise), and paths that pass CheckPath, so
// that a hostile client's odd paths are answered before any file system or
// log sees them.
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

// GoodPath reports whether r's path passes CheckPath; when it does not, it
// has answered r with 400 or 404. It is ContentOnly's path rule for
// handlers that take other methods too (an API's POST).
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

// FileServer serves the regular files of fsys over HTTP, with ranges and
// conditional requests, and never a directory listing: a path ending in
// "/" is 404, and so is a directory, FIFO or device. A boot server has no
// reason to show its trees. The type is checked with fs.Stat before the
// file is opened, so a FIFO in an os.DirFS tree (whose Open would block
// until a writer appears) is refused without being opened, as long as it
// is not swapped in between; a tree whose Open refuses anything but
// regular files without blocking (tftpsrv.Dir's does) closes that gap.
//
// Files go out with sendfile(2) where the tree allows it. An fs whose type
// has a Handler() http.Handler method (*Image does) serves its regular
// files through it; any other tree is served file by file with
// http.ServeContent on the very file its Open returned, so an *os.File
// (os.DirFS's, an os.Root's) reaches sendfile, where http.FileServerFS
// wraps every file and copies through user space.
func FileServer(fsys fs.FS) http.Handler {
	s := &fileServer{fsys: fsys}
	if t, ok := fsys.(interface{ Handler() http.Handler }); ok {
		s.fast = t.Handler()
	}
	return s
}

type fileServer struct {
	fsys fs.FS
	fast http.Handler // the tree's own handler, or nil
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" || strings.HasSuffix(name, "/") || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	if st, err := fs.Stat(s.fsys, name); !s.regular(w, r, st, err) {
		return
	}
	// The tree's own handler gets regular files only: Image.Handler
	// lists directories, and redirects any ".../index.html" to its
	// directory as http.FileServer does.
	if s.fast != nil && path.Base(name) != "index.html" {
		s.fast.ServeHTTP(w, r)
		return
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		s.regular(w, r, nil, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if !s.regular(w, r, st, err) {
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, path.Base(name), st.ModTime(), rs)
}

// regular reports whether st is a regular file; when not, it has answered
// r: 403 for a permission error, 404 for anything else.
func (s *fileServer) regular(w http.ResponseWriter, r *http.Request, st fs.FileInfo, err error) bool {
	switch {
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, "403 Forbidden", http.StatusForbidden)
	case err != nil || !st.Mode().IsRegular():
		http.NotFound(w, r)
	default:
		return true
	}
	return false
}

// BaseURL returns the URL clients reach an HTTP server at that listens on
// addr ("host:port", as net.Listen takes it) on a host whose address is
// ip: the listen host when it names one, else ip, with a trailing slash.
// Port 80 is left out, because GRUB builds without port parsing take only
// (http,host): menus and kernel lines must name http://10.0.0.1/, not
// http://10.0.0.1:80/.
func BaseURL(addr string, ip netip.Addr) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("isosrc: HTTP address %q: %w", addr, err)
	}
	if h, err := netip.ParseAddr(host); err == nil && !h.IsUnspecified() {
		ip = h
	}
	if !ip.IsValid() {
		return "", fmt.Errorf("isosrc: HTTP address %q: no address clients could reach", addr)
	}
	if port == "80" {
		if ip.Is6() {
			return "http://[" + ip.String() + "]/", nil
		}
		return "http://" + ip.String() + "/", nil
	}
	return "http://" + net.JoinHostPort(ip.String(), port) + "/", nil
}
