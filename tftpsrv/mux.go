package tftpsrv

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

// ServeMux routes requests by cleaned name to handlers, so generated files
// (per-host GRUB or PXELINUX configs) can sit beside a tree of real files.
//
// Patterns, leading slash optional:
//
//	"grub/grub.cfg"        exactly that name
//	"pxelinux.cfg/"        every name under that directory (longest wins)
//	"grub.cfg-01-*"        a path.Match glob ('*' does not cross '/')
//	"/"                    everything not matched otherwise (the fallback)
//
// Exact names win over globs, globs (in the order registered) over
// prefixes, and prefixes over "/". A name nothing matches is "file not
// found". Handlers see the full cleaned name.
type ServeMux struct {
	mu       sync.RWMutex
	exact    map[string]Handler
	globs    []muxEntry
	prefixes []muxEntry // longest first
	fallback Handler
}

type muxEntry struct {
	pattern string
	h       Handler
}

// NewServeMux returns an empty ServeMux.
func NewServeMux() *ServeMux {
	return &ServeMux{exact: map[string]Handler{}}
}

// ErrBadPattern reports a pattern ServeMux cannot use.
var ErrBadPattern = errors.New("tftpsrv: bad pattern")

// Handle registers h for pattern. It fails on a nil handler, a malformed
// glob, a pattern that no cleaned name could match, or a pattern registered
// twice.
func (m *ServeMux) Handle(pattern string, h Handler) error {
	if h == nil {
		return fmt.Errorf("%w %q: nil handler", ErrBadPattern, pattern)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exact == nil {
		m.exact = map[string]Handler{}
	}
	p := strings.TrimLeft(pattern, "/")
	dup := func() error { return fmt.Errorf("%w %q: registered twice", ErrBadPattern, pattern) }
	switch {
	case p == "":
		if m.fallback != nil {
			return dup()
		}
		m.fallback = h
	case strings.ContainsAny(p, "*?[\\"):
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%w %q: %v", ErrBadPattern, pattern, err)
		}
		for _, e := range m.globs {
			if e.pattern == p {
				return dup()
			}
		}
		m.globs = append(m.globs, muxEntry{p, h})
	case strings.HasSuffix(p, "/"):
		if c, err := CleanName(p); err != nil || c+"/" != p {
			return fmt.Errorf("%w %q: not a clean directory name", ErrBadPattern, pattern)
		}
		for _, e := range m.prefixes {
			if e.pattern == p {
				return dup()
			}
		}
		m.prefixes = append(m.prefixes, muxEntry{p, h})
		sort.SliceStable(m.prefixes, func(i, j int) bool { return len(m.prefixes[i].pattern) > len(m.prefixes[j].pattern) })
	default:
		if c, err := CleanName(p); err != nil || c != p {
			return fmt.Errorf("%w %q: not a clean file name", ErrBadPattern, pattern)
		}
		if _, ok := m.exact[p]; ok {
			return dup()
		}
		m.exact[p] = h
	}
	return nil
}

// HandleFunc registers f for pattern; see Handle.
func (m *ServeMux) HandleFunc(pattern string, f func(ResponseWriter, *Request)) error {
	if f == nil {
		return fmt.Errorf("%w %q: nil handler", ErrBadPattern, pattern)
	}
	return m.Handle(pattern, HandlerFunc(f))
}

// Handler returns the handler for a cleaned name and the pattern that
// matched; nil and "" when nothing does.
func (m *ServeMux) Handler(name string) (Handler, string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h, ok := m.exact[name]; ok {
		return h, name
	}
	for _, e := range m.globs {
		if ok, _ := path.Match(e.pattern, name); ok {
			return e.h, e.pattern
		}
	}
	for _, e := range m.prefixes {
		if strings.HasPrefix(name, e.pattern) {
			return e.h, e.pattern
		}
	}
	if m.fallback != nil {
		return m.fallback, "/"
	}
	return nil, ""
}

// ServeTFTP dispatches to the matching handler.
func (m *ServeMux) ServeTFTP(w ResponseWriter, r *Request) {
	h, _ := m.Handler(r.Name)
	if h == nil {
		w.Error(fs.ErrNotExist)
		return
	}
	h.ServeTFTP(w, r)
}
