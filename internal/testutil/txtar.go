package testutil

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Txtar is a file tree read by [ReadTxtar].
type Txtar struct {
	// Files maps each file's slash-separated path to its content.
	Files map[string][]byte
	// Links maps each symbolic link's path to its target.
	Links map[string]string
}

// ReadTxtar reads a file tree in the format of the module's test data
// (isosrc/testdata/distros): a line "-- name --" starts the file name, a
// line "-- link -> target --" declares a symbolic link, and text before
// the first header is a comment. A file's content is every line up to the
// next header, each with its newline. An unreadable file fails t.
func ReadTxtar(t testing.TB, path string) Txtar {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ParseTxtar(raw)
}

// ParseTxtar parses raw as [ReadTxtar] does; any input gives a tree.
func ParseTxtar(raw []byte) Txtar {
	tr := Txtar{Files: map[string][]byte{}, Links: map[string]string{}}
	cur := ""
	var buf bytes.Buffer
	flush := func() {
		if cur != "" {
			tr.Files[cur] = bytes.Clone(buf.Bytes())
		}
		buf.Reset()
		cur = ""
	}
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		h := strings.TrimRight(line, "\n")
		if strings.HasPrefix(h, "-- ") && strings.HasSuffix(h, " --") {
			flush()
			name := strings.TrimSuffix(strings.TrimPrefix(h, "-- "), " --")
			if from, to, ok := strings.Cut(name, " -> "); ok {
				tr.Links[from] = to
				continue
			}
			cur = name
			continue
		}
		if cur != "" {
			buf.WriteString(line)
		}
	}
	flush()
	return tr
}
