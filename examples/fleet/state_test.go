package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
)

// childEnv, when set, makes the test binary the fleet program itself, with
// the JSON-encoded arguments it holds: a server the test can kill -9.
const childEnv = "PXEKIT_FLEET_TEST_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, argv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestStorePersists(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.state.json")
	s, err := OpenStore(p)
	require.NoError(t, err)
	assert.Empty(t, s.All(), "a missing file is an empty fleet")
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	_, err = s.Update(macWeb, func(r *Record) { r.Hostname, r.State, r.Changed = "web01", Installing, at })
	require.NoError(t, err)
	_, err = s.Update(macDB, func(r *Record) {
		r.Hostname, r.State, r.Changed = "db01", Failed, at
		r.Report = &Report{Report: answerfile.Report{Status: "failed", OS: "debian-12",
			Checks: []Check{{Name: "service nginx", OK: false}, {Name: "user ops", OK: true}}}, At: at, From: "10.0.0.7"}
	})
	require.NoError(t, err)
	want := s.All()
	require.NoError(t, s.Close())

	s, err = OpenStore(p)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, want, s.All())
	r, ok := s.Get(macDB)
	require.True(t, ok)
	assert.Equal(t, Failed, r.State)
	assert.Equal(t, "service nginx", r.Report.Checks[0].Name)
	_, ok = s.Get(macNew)
	assert.False(t, ok)

	left, err := filepath.Glob(p + ".tmp*")
	require.NoError(t, err)
	assert.Empty(t, left, "every rewrite renames its temporary file")
}

func TestStoreInMemory(t *testing.T) {
	s, err := OpenStore("")
	require.NoError(t, err)
	r, err := s.Update(macWeb, func(r *Record) { r.State = Done })
	require.NoError(t, err)
	assert.Equal(t, Record{MAC: macWeb, State: Done}, r)
	require.NoError(t, s.Close())
}

func TestStoreRefusesCorruptFile(t *testing.T) {
	valid, err := json.Marshal(stateFile{Version: 1, Hosts: []Record{{MAC: macWeb, State: Done}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("this is not json")},
		{"truncated by a crash of another writer", valid[:len(valid)/2]},
		{"zeros from a lost delayed allocation", make([]byte, 64)},
		{"empty", nil},
		{"wrong shape", []byte(`{"version":1,"hosts":{"mac":"x"}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "fleet.state.json")
			require.NoError(t, os.WriteFile(p, tc.data, 0o600))
			_, err := OpenStore(p)
			require.Error(t, err, "starting empty would reinstall every finished host")
			assert.Contains(t, err.Error(), p)
			assert.Contains(t, err.Error(), "corrupt")
			assert.Contains(t, err.Error(), "move it away", "says what to do")

			// The refusal releases the lock: fixing the file is enough.
			require.NoError(t, os.WriteFile(p, valid, 0o600))
			s, err := OpenStore(p)
			require.NoError(t, err)
			assert.Len(t, s.All(), 1)
			s.Close()
		})
	}
}

func TestStoreBusy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.state.json")
	s, err := OpenStore(p)
	require.NoError(t, err)
	_, err = OpenStore(p)
	require.ErrorIs(t, err, ErrStateBusy, "two servers would overwrite each other's reports")
	assert.Contains(t, err.Error(), p)
	require.NoError(t, s.Close())
	s, err = OpenStore(p)
	require.NoError(t, err, "closing releases the file")
	s.Close()
}

func TestStoreFailedWriteKeepsOldRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o755))
	s, err := OpenStore(filepath.Join(dir, "fleet.state.json"))
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Update(macWeb, func(r *Record) { r.State = Installing })
	require.NoError(t, err)

	// Root ignores permissions: take the directory away instead.
	require.NoError(t, os.RemoveAll(dir))
	old, err := s.Update(macWeb, func(r *Record) { r.State = Done })
	require.Error(t, err)
	assert.Equal(t, Installing, old.State)
	r, _ := s.Get(macWeb)
	assert.Equal(t, Installing, r.State, "not acknowledged, not claimed")
	_, err = s.Update(macDB, func(r *Record) { r.State = Done })
	require.Error(t, err)
	_, ok := s.Get(macDB)
	assert.False(t, ok)
}

// child is the fleet program in a process of its own.
type child struct {
	cmd    *exec.Cmd
	http   string
	stderr *syncBuffer
	done   chan error
}

func startChild(t *testing.T, inventory string, extra ...string) *child {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		hp, tp := freePorts(t)
		_, sp := freePorts(t) // not the default syslog port: concurrent test runs would share it
		args, err := json.Marshal(append([]string{"-inventory", inventory, "-dhcp", "off", "-progress", "log",
			"-http-addr", "127.0.0.1:" + strconv.Itoa(hp), "-tftp-addr", "127.0.0.1:" + strconv.Itoa(tp),
			"-syslog-addr", "127.0.0.1:" + strconv.Itoa(sp)}, extra...))
		require.NoError(t, err)
		c := &child{http: fmt.Sprintf("http://127.0.0.1:%d/", hp), stderr: &syncBuffer{}, done: make(chan error, 1)}
		c.cmd = exec.Command(os.Args[0])
		c.cmd.Env = append(os.Environ(), childEnv+"="+string(args))
		c.cmd.Stderr = c.stderr
		require.NoError(t, c.cmd.Start())
		go func() { c.done <- c.cmd.Wait() }()
		if up := waitChild(c); up {
			t.Cleanup(func() {
				_ = c.cmd.Process.Kill()
				select {
				case <-c.done:
				case <-time.After(10 * time.Second):
					t.Errorf("child %d did not exit", c.cmd.Process.Pid)
				}
			})
			return c
		}
		_ = c.cmd.Process.Kill()
		<-c.done
		if !strings.Contains(c.stderr.String(), "address already in use") {
			t.Fatalf("child fleet did not start: %s", c.stderr.String())
		}
	}
	t.Fatal("no free ports after 3 attempts")
	return nil
}

// waitChild polls the child's HTTP port until it answers, it exits, or
// 20 s pass (a race-instrumented binary starts slower).
func waitChild(c *child) bool {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			c.done <- err
			return false
		default:
		}
		if resp, err := hc.Get(c.http + "status.json"); err == nil {
			resp.Body.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// killNow sends SIGKILL: no deferred Close, no shutdown, no flush.
func (c *child) killNow(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case err := <-c.done:
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%v", err)
		ws := ee.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child ended by %v, not by SIGKILL: %s", ws, c.stderr.String())
		c.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("child did not die")
	}
}

func TestReportSurvivesKill9(t *testing.T) {
	needHostLoaders(t)
	inventory := writeInventory(t, UnknownLocal)
	state := strings.TrimSuffix(inventory, ".yaml") + ".state.json"
	hc := &http.Client{Timeout: 10 * time.Second}
	c := startChild(t, inventory)
	dbToken, webToken := tokenOf(t, state, macDB), tokenOf(t, state, macWeb)
	answer := "hosts/" + macPath(macDB) + "/" + dbToken + "/preseed.cfg"
	resp, err := hc.Get(c.http + answer)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body := reportJSON("db01", "ok", map[string]bool{"user ops": true, "package postgresql": true})
	resp, err = hc.Post(c.http+"api/report/"+macPath(macDB)+"/"+dbToken, "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	// The installer saw its report acknowledged: whatever happens to the
	// server now, the host must not install again.
	c.killNow(t)

	s, err := OpenStore(state)
	require.NoError(t, err, "SIGKILL released the lock and left a readable file")
	r, ok := s.Get(macDB)
	require.True(t, ok)
	assert.Equal(t, Installed, r.State)
	require.NotNil(t, r.Report)
	assert.Len(t, r.Report.Checks, 2)
	assert.Equal(t, "127.0.0.1", r.Report.From)
	r, _ = s.Get(macWeb)
	assert.NotEqual(t, Installed, r.State)
	require.NoError(t, s.Close())

	// A restarted server knows it too.
	c = startChild(t, inventory)
	resp, err = hc.Get(c.http + answer)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, dbToken, tokenOf(t, state, macDB), "tokens survive restarts")
	resp, err = hc.Get(c.http + "hosts/" + macPath(macWeb) + "/" + webToken + "/preseed.cfg")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the others still install")
	c.killNow(t)
}

// tokenOf reads mac's token from a state file (a running server's too:
// looking does not lock it).
func tokenOf(t *testing.T, state, mac string) string {
	t.Helper()
	s, err := ReadStore(state)
	require.NoError(t, err)
	r, ok := s.Get(mac)
	require.True(t, ok, "%s not in %s", mac, state)
	require.Len(t, r.Token, 32)
	return r.Token
}

func TestStoreSecretAndLegacyStates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.state.json")
	// A state file written before first-boot reports: "done" hosts.
	require.NoError(t, os.WriteFile(p, []byte(`{"version":1,"hosts":[{"mac":"`+macWeb+`","state":"done","changed":"2026-01-01T00:00:00Z"}]}`), 0o600))
	s, err := OpenStore(p)
	require.NoError(t, err)
	r, _ := s.Get(macWeb)
	assert.Equal(t, Installed, r.State)
	key, err := s.Secret()
	require.NoError(t, err)
	assert.Len(t, key, 32)
	again, _ := s.Secret()
	assert.Equal(t, key, again)
	require.NoError(t, s.Close())

	s, err = OpenStore(p)
	require.NoError(t, err)
	kept, err := s.Secret()
	require.NoError(t, err)
	assert.Equal(t, key, kept, "the secret survives a restart")
	require.NoError(t, s.Close())

	// A read-only store draws one for the run and says it could not keep it.
	ro, err := ReadStore(filepath.Join(t.TempDir(), "none.json"))
	require.NoError(t, err)
	key, err = ro.Secret()
	assert.Error(t, err)
	assert.Len(t, key, 32)

	require.NoError(t, os.WriteFile(p, []byte(`{"version":1,"secret":"zz","hosts":[]}`), 0o600))
	_, err = OpenStore(p)
	assert.ErrorContains(t, err, "corrupt secret")
}
