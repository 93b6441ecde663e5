package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"
)

// pollInterval bounds how often log files are re-read while waiting. Logs
// here are small (a whole installer boot writes well under a megabyte), so
// re-reading the file is cheaper than keeping incremental state per waiter.
const pollInterval = 200 * time.Millisecond

// WaitFile waits until re matches the contents of the file at path and
// returns the line that contains the match. It gives up when ctx ends. The
// file may not exist yet. Matches are searched in the whole file, so a line
// written before the call counts.
func WaitFile(ctx context.Context, path string, re *regexp.Regexp) (string, error) {
	return waitFile(ctx, path, re, nil)
}

// waitFile is WaitFile with a liveness check: when gone returns an error
// (the writer exited) the file is searched one last time and that error is
// returned if the pattern never appeared.
func waitFile(ctx context.Context, path string, re *regexp.Regexp, gone func() error) (string, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		// Check liveness before reading, so a final read after the writer
		// is gone still sees everything it wrote.
		var goneErr error
		if gone != nil {
			goneErr = gone()
		}
		if line, ok := matchFile(path, re); ok {
			return line, nil
		}
		if goneErr != nil {
			return "", fmt.Errorf("waiting for %q in %s: %w", re, path, goneErr)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %q in %s: %w", re, path, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// matchFile reports whether re matches the file and the matching line.
func matchFile(path string, re *regexp.Regexp) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	loc := re.FindIndex(data)
	if loc == nil {
		return "", false
	}
	start := bytes.LastIndexByte(data[:loc[0]], '\n') + 1
	end := len(data)
	if i := bytes.IndexByte(data[loc[1]:], '\n'); i >= 0 {
		end = loc[1] + i
	}
	return string(bytes.TrimRight(data[start:end], "\r")), true
}

// errExited is wrapped by wait errors when the process writing the log is
// gone, so tests can tell "crashed" from "too slow".
var errExited = errors.New("process exited")

// ErrExited reports whether err came from a wait that ended because the
// process (server or QEMU) exited before the pattern appeared.
func ErrExited(err error) bool { return errors.Is(err, errExited) }
