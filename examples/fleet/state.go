package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/pxekit/pxekit/answerfile"
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
	Installed  InstallState = "installed"  // the installer reported: boots its disk
	Booted     InstallState = "booted"     // the installed system reported its first boot
	Failed     InstallState = "failed"     // an install or first-boot check failed: boots its disk
)

// Done is Installed's name before first-boot reports; state files that
// say "done" load as Installed.
const Done = Installed

// Check is one check of a report.
type Check = answerfile.Check

// Report is a completion report as kept: what the installer (stage
// installed, also when empty) or the installed system (stage booted) sent,
// bounded by answerfile.ParseReport, with when and from where.
type Report struct {
	answerfile.Report
	At   time.Time `json:"at"`
	From string    `json:"from,omitempty"` // the reporting address
}

// Record is the persistent state of one MAC.
type Record struct {
	MAC      string       `json:"mac"`
	Hostname string       `json:"hostname,omitempty"`
	State    InstallState `json:"state"`
	Changed  time.Time    `json:"changed"`
	// Token is the secret every answer-file and report URL of the host's
	// current install carries; a new one is drawn when it is re-armed.
	Token string `json:"token,omitempty"`
	// Report is the installer's report, Boot the first boot's, of the
	// current install.
	Report *Report `json:"report,omitempty"`
	Boot   *Report `json:"boot,omitempty"`
}

// public is the record without its token, for answers to people.
func (r Record) public() Record {
	r.Token = ""
	return r
}

// Store keeps the records in one JSON file, rewritten atomically (temporary
// file, fsync, rename, fsync of the directory) before any change is
// acknowledged: a crash at any point leaves either the old or the new file,
// and a report the installer saw answered is on disk. Fleets are hundreds
// of hosts and changes a few per install, so rewriting is cheap.
//
// A Store may instead be shared by several servers through a sharedState
// backend (OpenEtcdStore): then every change is a compare-and-swap on the
// one record it touches, reads come from a copy the backend keeps current
// by watching, and a change that cannot be written fails with an error
// wrapping ErrStateUnavailable.
type Store struct {
	shared sharedState // nil: the file (or memory) below

	path     string // "" keeps state in memory only
	lock     *os.File
	readOnly bool

	mu     sync.Mutex
	recs   map[string]Record
	secret string // hex; see stateFile
}

// ErrStateUnavailable means the shared state backend did not answer: the
// change was not made (it may still land, which callers treat as not
// made). Routes answer 503 so that the asker retries later.
var ErrStateUnavailable = errors.New("install state store unavailable")

// sharedState is the install state kept where several servers read and
// change it at once. Its guarantees, which the gate relies on:
//
//   - update applies fn to the current record of mac and writes the result
//     only if nobody changed the record in between (fn runs again on the
//     newer record otherwise), so a transition such as armed -> installing
//     or "installer report recorded" happens once across every server;
//   - get and all answer from a copy kept current by a watch (quick,
//     possibly a moment behind another server's write), sync from the
//     backend itself;
//   - an unreachable backend fails quickly with ErrStateUnavailable and
//     is tried again by itself: no restart is needed when it returns.
type sharedState interface {
	get(mac string) (Record, bool)
	sync(mac string) (Record, bool, error)
	all() []Record
	update(mac string, fn func(*Record) error) (Record, error)
	secret() ([]byte, error)
	close() error
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
		if r.State == "done" {
			r.State = Installed
		}
		s.recs[r.MAC] = r
	}
	if k, err := hex.DecodeString(f.Secret); err != nil || (len(k) != 0 && len(k) < 16) {
		s.Close()
		return fmt.Errorf("state %s: corrupt secret; move the file away to start with every host pending", path)
	}
	s.secret = f.Secret
	return nil
}

type stateFile struct {
	Version int `json:"version"`
	// Secret derives the tokens of MACs that have no record (unknown
	// MACs installing from the menu); hex, 256 bits.
	Secret string   `json:"secret,omitempty"`
	Hosts  []Record `json:"hosts"`
}

// Secret returns the server's secret, drawing and saving one the first
// time. A store that cannot save (read-only, or a write error) keeps the
// one drawn in memory and says so with the error.
func (s *Store) Secret() ([]byte, error) {
	if s.shared != nil && s.readOnly {
		key, _ := hex.DecodeString(randomHex(32))
		return key, errReadOnly // -check: draws one, saves nothing
	}
	if s.shared != nil {
		return s.shared.secret()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.secret == "" {
		s.secret = randomHex(32)
		err = s.save() // on failure, the secret lives for this run only
	}
	key, _ := hex.DecodeString(s.secret) // checked by load
	return key, err
}

// UpdateMany is Update for several MACs at once, with one write.
//
// A shared store writes each record on its own: the records are
// independent, and one transaction per record keeps each compare-and-swap
// small. The first error stops it; records written before stay written.
func (s *Store) UpdateMany(macs []string, fn func(*Record)) error {
	if s.shared != nil && s.readOnly {
		return errReadOnly
	}
	if s.shared != nil {
		for _, mac := range macs {
			if _, err := s.shared.update(mac, func(r *Record) error { fn(r); return nil }); err != nil {
				return err
			}
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := make(map[string]Record, len(macs))
	for _, mac := range macs {
		r, ok := s.recs[mac]
		if ok {
			old[mac] = r
		} else {
			r = Record{MAC: mac, State: Pending}
		}
		fn(&r)
		s.recs[mac] = r
	}
	if err := s.save(); err != nil {
		for _, mac := range macs {
			if r, ok := old[mac]; ok {
				s.recs[mac] = r
			} else {
				delete(s.recs, mac)
			}
		}
		return err
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// Close releases the state file.
func (s *Store) Close() error {
	if s.shared != nil {
		return s.shared.close()
	}
	if s.lock != nil {
		return s.lock.Close()
	}
	return nil
}

// Get returns the record of mac (lower-case colon form); ok is false for a
// MAC never recorded, which is Pending.
func (s *Store) Get(mac string) (Record, bool) {
	if s.shared != nil {
		return s.shared.get(mac)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[mac]
	return r, ok
}

// Update applies fn to the record of mac and makes the result durable
// before returning. A failed write leaves the old record in place.
func (s *Store) Update(mac string, fn func(*Record)) (Record, error) {
	return s.UpdateIf(mac, func(r *Record) error { fn(r); return nil })
}

// UpdateIf is Update where fn may refuse the change: its error is
// returned and nothing changes.
//
// On a shared store fn may run more than once (again on a newer record
// when another server changed it meanwhile); only its last run counts.
func (s *Store) UpdateIf(mac string, fn func(*Record) error) (Record, error) {
	if s.shared != nil && s.readOnly {
		return Record{}, errReadOnly
	}
	if s.shared != nil {
		return s.shared.update(mac, fn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.recs[mac]
	r := old
	if !ok {
		r = Record{MAC: mac, State: Pending}
	}
	if err := fn(&r); err != nil {
		return old, err
	}
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
	if s.shared != nil {
		return s.shared.all()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

// Shared says whether other servers change the records too.
func (s *Store) Shared() bool { return s.shared != nil }

// Sync returns the record of mac as the backend has it now (a shared
// store asks it; a file store is its own backend), for decisions that
// must not act on a copy a moment old.
func (s *Store) Sync(mac string) (Record, bool, error) {
	if s.shared != nil {
		return s.shared.sync(mac)
	}
	r, ok := s.Get(mac)
	return r, ok, nil
}

// save writes the file; s.mu is held.
func (s *Store) save() error {
	if s.readOnly {
		return errReadOnly
	}
	if s.path == "" {
		return nil
	}
	f := stateFile{Version: 1, Secret: s.secret}
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
