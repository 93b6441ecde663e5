package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// InstallState is where a host stands in its install-once life.
type InstallState string

// The install states. Only Pending and Installing hosts are installed on
// their next network boot; a report (whatever its result) ends that, so a
// machine whose checks failed is kept for a person to look at instead of
// being wiped again in a loop.
const (
	Pending    InstallState = "pending"    // armed: the next network boot installs
	Installing InstallState = "installing" // the installer has its answer file
	Done       InstallState = "done"       // reported success: boots its disk
	Failed     InstallState = "failed"     // reported failed checks: boots its disk
)

// Check is one post-install check from the installer's report.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// Report is the installer's completion callback (see answerfile's
// package documentation for the request).
type Report struct {
	Hostname string    `json:"hostname"`
	OS       string    `json:"os"`
	Status   string    `json:"status"` // ok, failed or unknown
	Checks   []Check   `json:"checks,omitempty"`
	At       time.Time `json:"at"`
	From     string    `json:"from,omitempty"` // the reporting address
}

// Record is the persistent state of one MAC.
type Record struct {
	MAC      string       `json:"mac"`
	Hostname string       `json:"hostname,omitempty"`
	State    InstallState `json:"state"`
	Changed  time.Time    `json:"changed"`
	Report   *Report      `json:"report,omitempty"`
}

// Store keeps the records in one JSON file, rewritten atomically (temporary
// file, fsync, rename, fsync of the directory) before any change is
// acknowledged: a crash at any point leaves either the old or the new file,
// and a report the installer saw answered is on disk. Fleets are hundreds
// of hosts and changes a few per install, so rewriting is cheap.
type Store struct {
	path     string // "" keeps state in memory only
	lock     *os.File
	readOnly bool

	mu   sync.Mutex
	recs map[string]Record
}

// ErrStateBusy means another process holds the state file.
var ErrStateBusy = errors.New("state file in use by another fleet server")

// OpenStore loads the state file at path (a missing file is an empty
// fleet) and locks it against a second server. An unreadable or corrupt
// file is an error: starting empty would reinstall every finished host.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path, recs: map[string]Record{}}
	if path == "" {
		return s, nil
	}
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("state %s: %w", path, ErrStateBusy)
	}
	s.lock = lf
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadStore loads the state file without locking it, for looking only
// (-check): every Update fails.
func ReadStore(path string) (*Store, error) {
	s := &Store{path: path, recs: map[string]Record{}, readOnly: true}
	if path == "" {
		return s, nil
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// errReadOnly refuses changes to a store opened by ReadStore.
var errReadOnly = errors.New("state opened read-only")

func (s *Store) load() error {
	path := s.path
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		s.Close()
		return fmt.Errorf("state: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(data, &f); err != nil {
		s.Close()
		return fmt.Errorf("state %s: corrupt (%v); move it away to start with every host pending", path, err)
	}
	if f.Version > 1 {
		s.Close()
		return fmt.Errorf("state %s: version %d is newer than this program understands (1)", path, f.Version)
	}
	for _, r := range f.Hosts {
		s.recs[r.MAC] = r
	}
	return nil
}

type stateFile struct {
	Version int      `json:"version"`
	Hosts   []Record `json:"hosts"`
}

// Close releases the state file.
func (s *Store) Close() error {
	if s.lock != nil {
		return s.lock.Close()
	}
	return nil
}

// Get returns the record of mac (lower-case colon form); ok is false for a
// MAC never recorded, which is Pending.
func (s *Store) Get(mac string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[mac]
	return r, ok
}

// Update applies fn to the record of mac and makes the result durable
// before returning. A failed write leaves the old record in place.
func (s *Store) Update(mac string, fn func(*Record)) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.recs[mac]
	r := old
	if !ok {
		r = Record{MAC: mac, State: Pending}
	}
	fn(&r)
	s.recs[mac] = r
	if err := s.save(); err != nil {
		if ok {
			s.recs[mac] = old
		} else {
			delete(s.recs, mac)
		}
		return old, err
	}
	return r, nil
}

// All returns every record, sorted by MAC.
func (s *Store) All() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

// save writes the file; s.mu is held.
func (s *Store) save() error {
	if s.readOnly {
		return errReadOnly
	}
	if s.path == "" {
		return nil
	}
	f := stateFile{Version: 1}
	for _, r := range s.recs {
		f.Hosts = append(f.Hosts, r)
	}
	sort.Slice(f.Hosts, func(i, j int) bool { return f.Hosts[i].MAC < f.Hosts[j].MAC })
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if _, err = tmp.Write(append(data, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
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
