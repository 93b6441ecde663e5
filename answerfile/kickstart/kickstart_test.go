package kickstart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHandwritten(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "handwritten.ks"))
	require.NoError(t, err)
	ks, err := Parse(data)
	require.NoError(t, err)

	net := ks.Commands("network")
	require.Len(t, net, 1)
	assert.Equal(t, "boot NIC", net[0].Comment)
	assert.Equal(t, []string{"yes", "eth0", "dhcp"}, net[0].Positional())
	_, ok := net[0].Option("noipv6")
	assert.True(t, ok)

	bl := ks.Commands("bootloader")[0]
	v, _ := bl.Option("--append")
	assert.Equal(t, "crashkernel=auto rhgb quiet", v)
	rp := ks.Commands("rootpw")[0]
	assert.Equal(t, "$6$DnceMH60Kiu8TaME$ySd/QOpPtEcLnnoW36bDjb59xr1eJHGUwTTV/4MHoojT.RoXXdsLHMWJXcLCETQNRF2xITSqKHAAUNZq6df0i/", rp.Positional()[0])

	unknown := ks.Commands("frobnicate")
	require.Len(t, unknown, 1, "unknown commands are kept")
	assert.True(t, unknown[0].Unknown)
	assert.Equal(t, []string{"all the things"}, unknown[0].Positional())

	assert.Len(t, ks.Commands("logvol"), 2)
	post := ks.Sections("post")
	require.Len(t, post, 2)
	log, _ := post[0].Option("log")
	assert.Equal(t, "/mnt/sysimage/root/post.log", log)
	_, nochroot := post[0].Option("--nochroot")
	assert.True(t, nochroot)
	assert.Equal(t, []string{`echo "no %end on the previous section"`}, post[1].Body)
	pre := ks.Sections("pre")[0]
	assert.Equal(t, []string{`echo "detecting disks" > /tmp/pre.log`}, pre.Body)
	pk := ks.Sections("packages")[0]
	assert.Equal(t, []string{"@core", "@server-policy", "-nano"}, pk.Body)

	out := string(ks.Format())
	assert.Contains(t, out, "%include /tmp/part-include.ks\n")
	assert.Contains(t, out, "# Kickstart file written by hand")
	assert.Contains(t, out, "frobnicate --level=11 'all the things'\n")
	assert.Contains(t, out, "bootloader --location=mbr --driveorder=sda --append='crashkernel=auto rhgb quiet'\n")
	assert.Equal(t, 4, strings.Count(out, "%end\n"), "a missing end is added:\n"+out)

	joined := strings.Join(ks.Warnings, "\n")
	assert.Contains(t, joined, `unknown command "frobnicate"`)
	assert.Contains(t, joined, "%post before %end")
	assert.Contains(t, joined, "has no %end")

	again, err := Parse([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, ks.Lines, again.Lines)
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"network --hostname='x\n", "rootpw \"abc\n", "%end\n"} {
		_, err := Parse([]byte(in))
		assert.ErrorIs(t, err, ErrSyntax, in)
	}
}

func TestKSQuote(t *testing.T) {
	for _, w := range []string{"plain", "with space", "it's", `a"b`, "$6$x", "#c", "a#c", "", `back\slash`, "it's $HOME `x`", `it's \$ \` + "`"} {
		words, _, err := ksSplit("cmd " + ksQuote(w))
		require.NoError(t, err, w)
		require.Len(t, words, 2, w)
		assert.Equal(t, w, words[1])
	}
}

// TestKSSplitLikePykickstart holds ksSplit to what pykickstart reads:
// Python's shlex.split(line, comments=True), run here when python3 exists,
// and the expected words written out for the cases that once differed.
func TestKSSplitLikePykickstart(t *testing.T) {
	cases := []struct {
		line  string
		words []string
	}{
		{`part / --label=a#b --size=1`, []string{"part", "/", "--label=a"}},
		{`user --gecos="a\$b"`, []string{"user", `--gecos=a\$b`}},
		{"user --gecos=\"a\\`b\\`\"", []string{"user", "--gecos=a\\`b\\`"}},
		{`user --gecos="q\"x\\y"`, []string{"user", `--gecos=q"x\y`}},
		{`cmd a\ b 'c#d' "e#f"#g`, []string{"cmd", "a b", "c#d", "e#f"}},
		{`cmd '' "" x`, []string{"cmd", "", "", "x"}},
		{`cmd a\$b \#c`, []string{"cmd", "a$b", "#c"}},
	}
	for _, c := range cases {
		got, _, err := ksSplit(c.line)
		require.NoError(t, err, c.line)
		assert.Equal(t, c.words, got, c.line)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Log("python3 not installed: shlex cross-check skipped")
		return
	}
	lines := []string{}
	for _, c := range cases {
		lines = append(lines, c.line)
	}
	lines = append(lines, `network --hostname=x # comment`, `rootpw --iscrypted $6$a$b#c`, `a"b c"d 'e f'g`,
		`x "a\nb" 'a\nb' a\nb`, `x "\'" '\"'`)
	in, err := json.Marshal(lines)
	require.NoError(t, err)
	out, err := exec.Command(python, "-c", `import json, shlex, sys
print(json.dumps([shlex.split(l, comments=True) for l in json.loads(sys.argv[1])]))`, string(in)).Output()
	require.NoError(t, err)
	var want [][]string
	require.NoError(t, json.Unmarshal(out, &want))
	for i, l := range lines {
		got, _, err := ksSplit(l)
		require.NoError(t, err, l)
		if len(got) == 0 {
			got = []string{}
		}
		assert.Equal(t, want[i], got, "%s", l)
	}
}

func TestSectionEnd(t *testing.T) {
	ks, err := Parse([]byte("%post\n%end#x\necho a\n  %end   # done\nreboot\n"))
	require.NoError(t, err)
	require.Len(t, ks.Lines, 2)
	assert.Equal(t, []string{"%end#x", "echo a"}, ks.Lines[0].Section.Body)
	assert.Equal(t, "reboot", ks.Lines[1].Command.Name)
	ks, err = Parse([]byte("unsupported_hardware\nmount /dev/sda1 /boot\n"))
	require.NoError(t, err)
	assert.Empty(t, ks.Warnings)
}

// FuzzParse: whatever parses must format to something that parses
// to the same model.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "handwritten.ks"))
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte("part / --size=1 --grow\n%post --log=/x\necho hi\n%end\n"))
	f.Add([]byte("user --name=a --gecos=\"A \\\"B\\\"\" # c\n"))
	f.Add([]byte("%addon com_redhat_kdump --disable\n%end\n%include x\n"))
	gold, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "rocky-9.0.lvm.full.ks"))
	require.NoError(f, err)
	f.Add(gold)
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := Parse(data)
		if err != nil {
			return
		}
		out := ks.Format()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%s", err, out)
		}
		if len(again.Lines) != len(ks.Lines) {
			t.Fatalf("line count %d != %d\n%q\n%q", len(again.Lines), len(ks.Lines), data, out)
		}
		assert.Equal(t, ks.Lines, again.Lines)
	})
}
