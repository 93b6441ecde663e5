package testutil

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTxtar(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		files map[string]string
		links map[string]string
	}{
		{"empty", "", map[string]string{}, map[string]string{}},
		{"comment only", "just words\n", map[string]string{}, map[string]string{}},
		{"files and a link", "comment\n-- a/b.txt --\nline 1\nline 2\n-- c -> a/b.txt --\n-- d --\nlast, no newline",
			map[string]string{"a/b.txt": "line 1\nline 2\n", "d": "last, no newline"}, map[string]string{"c": "a/b.txt"}},
		{"empty file", "-- e --\n-- f --\nx\n", map[string]string{"e": "", "f": "x\n"}, map[string]string{}},
		{"header-like text inside a line", "-- g --\nnot -- a header --\n", map[string]string{"g": "not -- a header --\n"}, map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := ParseTxtar([]byte(c.in))
			got := map[string]string{}
			for k, v := range tr.Files {
				got[k] = string(v)
			}
			assert.Equal(t, c.files, got)
			assert.Equal(t, c.links, tr.Links)
		})
	}
}

// TestReadTxtar reads the test data the format was made for.
func TestReadTxtar(t *testing.T) {
	tr := ReadTxtar(t, filepath.Join("..", "..", "isosrc", "testdata", "distros", "rocky-9.0.txtar"))
	require.Contains(t, tr.Files, ".treeinfo")
	assert.Contains(t, string(tr.Files[".treeinfo"]), "productmd.treeinfo")
}

// FuzzParseTxtar: any bytes parse, and every file's content is a piece of
// the input.
func FuzzParseTxtar(f *testing.F) {
	f.Add([]byte("c\n-- a --\nx\n-- b -> a --\n"))
	f.Add([]byte("-- --\n-- -> --\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr := ParseTxtar(raw)
		for name, data := range tr.Files {
			assert.NotEmpty(t, name)
			assert.Contains(t, string(raw), string(data))
		}
	})
}
