package dhcpsrv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/dhcpsrv"
)

// fakePeer serves until shut down, or returns fail at once when set.
type fakePeer struct {
	name  string
	fail  error // returned by Serve at once
	quit  bool  // Serve returns nil at once
	order *[]string
	mu    *sync.Mutex

	stop     chan struct{}
	once     sync.Once
	deadline time.Time
}

func newFakePeer(name string, order *[]string, mu *sync.Mutex) *fakePeer {
	return &fakePeer{name: name, order: order, mu: mu, stop: make(chan struct{})}
}

func (p *fakePeer) peer() dhcpsrv.Peer {
	return dhcpsrv.Peer{
		Serve: func() error {
			switch {
			case p.fail != nil:
				return p.fail
			case p.quit:
				return nil
			}
			<-p.stop
			return errors.New(p.name + ": closed") // not reported: the stop had begun
		},
		Shutdown: func(ctx context.Context) error {
			p.mu.Lock()
			*p.order = append(*p.order, p.name)
			p.deadline, _ = ctx.Deadline()
			p.mu.Unlock()
			p.once.Do(func() { close(p.stop) })
			return errors.New(p.name + ": shutdown error") // not reported either
		},
	}
}

func TestServeWith(t *testing.T) {
	boom := errors.New("tftp: socket gone")
	for _, tc := range []struct {
		name   string
		cancel bool // end ctx; else a peer ends serving
		fail   error
		quit   bool
		want   error
	}{
		{name: "ctx ends", cancel: true},
		{name: "a peer fails", fail: boom, want: boom},
		{name: "a peer returns nil", quit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, err := dhcpsrv.New(dhcpsrv.Config{Mode: dhcpsrv.ModeOff, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			require.NoError(t, err)
			var mu sync.Mutex
			var order []string
			tftp, http := newFakePeer("tftp", &order, &mu), newFakePeer("http", &order, &mu)
			http.fail, http.quit = tc.fail, tc.quit
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- s.ServeWith(ctx, 3*time.Second, tftp.peer(), http.peer()) }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ServeWith did not return")
			}
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			} else {
				require.NoError(t, err)
			}
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{"tftp", "http"}, order, "peers stop in order")
			assert.WithinDuration(t, start.Add(3*time.Second), tftp.deadline, 2*time.Second, "grace bounds the stop")
			assert.ErrorIs(t, s.Serve(context.Background()), dhcpsrv.ErrServerClosed, "DHCP is shut down")
			assert.Contains(t, logs.String(), "shutting down")
		})
	}
}

// A boot server's three sockets are bound first (DHCP last); ServeWith
// then serves until the context ends. Here a stand-in for the TFTP server
// and DHCP in ModeOff, which answers nothing.
func ExampleServer_ServeWith() {
	dhcp, err := dhcpsrv.New(dhcpsrv.Config{Mode: dhcpsrv.ModeOff})
	if err != nil {
		fmt.Println(err)
		return
	}
	stop := make(chan struct{})
	tftp := dhcpsrv.Peer{
		Serve:    func() error { <-stop; return errors.New("closed") },
		Shutdown: func(context.Context) error { close(stop); return nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(dhcp.ServeWith(ctx, 5*time.Second, tftp))
	// Output: <nil>
}
