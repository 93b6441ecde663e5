package etcdguard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errDown = errors.New("store unavailable")

type countingHandler struct {
	mu     sync.Mutex
	levels map[slog.Level]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels[r.Level]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestGuardFailsFastAndLogsOnce(t *testing.T) {
	h := &countingHandler{levels: map[slog.Level]int{}}
	g := &Guard{What: "test store", DownNote: "refusing", Unavailable: errDown,
		Timeout: time.Second, RetryAfter: 200 * time.Millisecond, Log: slog.New(h)}
	calls := 0
	fail := func(context.Context) error { calls++; return errors.New("connection refused") }
	ok := func(context.Context) error { calls++; return nil }

	require.ErrorIs(t, g.Do(context.Background(), fail), errDown)
	for range 5 { // inside RetryAfter: refused without reaching etcd
		require.ErrorIs(t, g.Do(context.Background(), fail), errDown)
	}
	assert.Equal(t, 1, calls, "requests fail fast while etcd is known to be down")

	time.Sleep(250 * time.Millisecond)
	require.ErrorIs(t, g.Do(context.Background(), fail), errDown)
	assert.Equal(t, 2, calls, "one request goes through after RetryAfter")

	time.Sleep(250 * time.Millisecond)
	require.NoError(t, g.Do(context.Background(), ok))
	require.NoError(t, g.Do(context.Background(), ok))
	assert.Equal(t, 4, calls)
	assert.Equal(t, 1, h.levels[slog.LevelWarn], "one warning per outage (then one a minute)")
	assert.Equal(t, 1, h.levels[slog.LevelInfo], "the end of the outage once")
}

func TestGuardCallerGaveUp(t *testing.T) {
	g := &Guard{Unavailable: errDown, Timeout: time.Second, RetryAfter: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := g.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, errDown)
	require.NoError(t, g.Do(context.Background(), func(context.Context) error { return nil }),
		"a caller giving up says nothing about etcd")
}
