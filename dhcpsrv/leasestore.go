package dhcpsrv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// LeaseState says what an address record means.
type LeaseState string

// Lease states. A released lease keeps its MAC so the client gets the same
// address back; a declined address is quarantined until Expiry.
const (
	LeaseBound    LeaseState = "bound"
	LeaseReleased LeaseState = "released"
	LeaseDeclined LeaseState = "declined"
)

// Lease is the durable record of one address.
type Lease struct {
	IP       netip.Addr       `json:"ip"`
	MAC      net.HardwareAddr `json:"-"`
	Hostname string           `json:"hostname,omitempty"`
	Expiry   time.Time        `json:"expiry"`
	State    LeaseState       `json:"state"`
}

type leaseJSON struct {
	IP       netip.Addr `json:"ip"`
	MAC      string     `json:"mac,omitempty"`
	Hostname string     `json:"hostname,omitempty"`
	Expiry   time.Time  `json:"expiry"`
	State    LeaseState `json:"state"`
}

// MarshalJSON writes the MAC in its colon form.
func (l Lease) MarshalJSON() ([]byte, error) {
	j := leaseJSON{IP: l.IP, Hostname: l.Hostname, Expiry: l.Expiry, State: l.State}
	if len(l.MAC) > 0 {
		j.MAC = l.MAC.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var j leaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Lease{IP: j.IP, Hostname: j.Hostname, Expiry: j.Expiry, State: j.State}
	if j.MAC != "" {
		mac, err := net.ParseMAC(j.MAC)
		if err != nil {
			return err
		}
		l.MAC = mac
	}
	if !l.IP.Is4() {
		return fmt.Errorf("lease address %v is not IPv4", l.IP)
	}
	return nil
}

// LeaseStore persists leases. Put must not return before the lease is
// durable: the server sends an ACK only after Put succeeds, which is what
// makes "no address given twice" hold across crashes. Implementations must
// be safe for concurrent use; a shared store (database) for several boot
// servers can be plugged in here.
type LeaseStore interface {
	// Load returns the latest record of every address, once, at start.
	Load(ctx context.Context) ([]Lease, error)
	// Put records the new state of lease.IP durably.
	Put(ctx context.Context, l Lease) error
	// Close releases the store.
	Close() error
}

// MemoryStore is a LeaseStore that forgets everything on exit; for tests and
// for proxy-like setups where addresses may be reused freely.
type MemoryStore struct {
	mu sync.Mutex
	m  map[netip.Addr]Lease
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[netip.Addr]Lease{}} }

// Load implements LeaseStore.
func (s *MemoryStore) Load(context.Context) ([]Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, 0, len(s.m))
	for _, l := range s.m {
		out = append(out, l)
	}
	return out, nil
}

// Put implements LeaseStore.
func (s *MemoryStore) Put(_ context.Context, l Lease) error {
	s.mu.Lock()
	s.m[l.IP] = l
	s.mu.Unlock()
	return nil
}

// Close implements LeaseStore.
func (s *MemoryStore) Close() error { return nil }

// ErrLeaseFileBusy reports a lease file already opened by another server.
var ErrLeaseFileBusy = errors.New("dhcpsrv: lease file busy")

// ErrStoreClosed is returned by FileStore.Put after Close.
var ErrStoreClosed = errors.New("dhcpsrv: lease store closed")

// FileStore is the default LeaseStore: an append-only log of JSON lines,
// fsync'd before Put returns, compacted on open and whenever it grows past
// four times the live records. Concurrent Puts share one write and one fsync
// (group commit), so durability costs one disk flush per burst, not per
// lease. A torn last line left by a crash is ignored; it belonged to a Put
// that never returned, so its ACK was never sent.
//
// A log was chosen over an embedded database: it adds no dependency, its
// crash semantics are easy to reason about, and the data (one record per
// address) is small enough to load whole.
type FileStore struct {
	path string

	mu      sync.Mutex // guards live, records, f
	live    map[netip.Addr]Lease
	records int
	f       *os.File
	lock    *os.File

	reqs chan putReq
	done chan struct{}
	wg   sync.WaitGroup
}

type putReq struct {
	line []byte
	l    Lease
	errc chan error
}

// OpenFileStore opens (creating if needed) the lease log at path and takes
// an exclusive lock on it, so two servers cannot share one log by mistake.
func OpenFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("dhcpsrv: lease file path is empty")
	}
	s := &FileStore{path: path, live: map[netip.Addr]Lease{}, reqs: make(chan putReq, 256), done: make(chan struct{})}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dhcpsrv: lease lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s is used by another server", ErrLeaseFileBusy, path)
	}
	s.lock = lock
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.compact(); err != nil {
		lock.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.flusher()
	return s, nil
}

func (s *FileStore) load() error {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dhcpsrv: read lease file: %w", err)
	}
	line := 0
	for len(b) > 0 {
		line++
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			// Torn tail from a crash mid-write: never acknowledged.
			break
		}
		var l Lease
		if err := json.Unmarshal(b[:i], &l); err != nil {
			return fmt.Errorf("dhcpsrv: lease file %s line %d: %w", s.path, line, err)
		}
		s.live[l.IP] = l
		b = b[i+1:]
	}
	return nil
}

// compact rewrites the live set to a new file and renames it over the log.
// Caller holds no lock (open) or s.mu (flusher).
func (s *FileStore) compact() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("dhcpsrv: compact lease file: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, l := range s.live {
		b, _ := json.Marshal(l)
		w.Write(b)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(s.path))
	}
	if err != nil {
		return fmt.Errorf("dhcpsrv: compact lease file: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("dhcpsrv: open lease file: %w", err)
	}
	s.records = len(s.live)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load implements LeaseStore.
func (s *FileStore) Load(context.Context) ([]Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, 0, len(s.live))
	for _, l := range s.live {
		out = append(out, l)
	}
	return out, nil
}

// Put implements LeaseStore; it returns once the record is on disk.
func (s *FileStore) Put(ctx context.Context, l Lease) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	r := putReq{line: append(b, '\n'), l: l, errc: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.done:
		return ErrStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.errc:
		return err
	case <-s.done:
		return ErrStoreClosed
	case <-ctx.Done():
		// The write may still land; the caller treats the lease as not
		// granted, which is the safe direction.
		return ctx.Err()
	}
}

func (s *FileStore) flusher() {
	defer s.wg.Done()
	var batch []putReq
	var buf []byte
	for {
		batch, buf = batch[:0], buf[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.done:
			return
		}
	drain:
		for len(batch) < 4096 {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		for _, r := range batch {
			buf = append(buf, r.line...)
		}
		s.mu.Lock()
		_, err := s.f.Write(buf)
		if err == nil {
			err = s.f.Sync()
		}
		if err == nil {
			for _, r := range batch {
				s.live[r.l.IP] = r.l
			}
			s.records += len(batch)
			if s.records > 4*len(s.live)+1024 {
				err = s.compact()
			}
		}
		s.mu.Unlock()
		if err != nil {
			err = fmt.Errorf("dhcpsrv: write lease file: %w", err)
		}
		for _, r := range batch {
			r.errc <- err
		}
	}
}

// Close stops the store; pending Puts fail with ErrStoreClosed.
func (s *FileStore) Close() error {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil
	default:
	}
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.f.Close()
	s.lock.Close()
	return err
}
