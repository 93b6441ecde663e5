package bootmenu

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Arg
		err  string
	}{
		{"", nil, ""},
		{"  no_timer_check \t nomodeset ", []Arg{Flag("no_timer_check"), Flag("nomodeset")}, ""},
		{"vga=791 inst.text", []Arg{KV("vga", "791"), Flag("inst.text")}, ""},
		{"a=b=c", []Arg{KV("a", "b=c")}, ""},
		{"x=", []Arg{KV("x", "")}, ""},
		{`k="v"`, nil, `contains '"'`},
		{`k='v'`, nil, `contains '\''`},
		{`a\b`, nil, `contains '\\'`},
		{"=v", nil, "empty argument key"},
		{"bad;word", nil, `"bad;word"`},
		{"k=\x01", nil, "control character"},
	} {
		got, err := ParseArgs(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
	}
}

// FuzzParseArgs: whatever ParseArgs accepts renders for every loader.
func FuzzParseArgs(f *testing.F) {
	f.Add("no_timer_check nomodeset vga=791")
	f.Add("a=b=c x= y")
	f.Fuzz(func(t *testing.T, s string) {
		args, err := ParseArgs(s)
		if err != nil {
			return
		}
		m := &Menu{Entries: []Entry{{ID: "x", Title: "x", Kernel: "k", Args: args}}}
		for _, k := range Kinds() {
			if _, err := Render(m, k, Options{}); err != nil {
				t.Fatalf("%s: %q parsed but does not render: %v", k, s, err)
			}
		}
	})
}
