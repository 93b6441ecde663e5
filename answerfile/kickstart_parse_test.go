package answerfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKickstartHandwritten(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "kickstart", "handwritten.ks"))
	require.NoError(t, err)
	ks, err := ParseKickstart(data)
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

	again, err := ParseKickstart([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, ks.Lines, again.Lines)
}

func TestParseKickstartErrors(t *testing.T) {
	for _, in := range []string{"network --hostname='x\n", "rootpw \"abc\n", "%end\n"} {
		_, err := ParseKickstart([]byte(in))
		assert.ErrorIs(t, err, ErrKickstartSyntax, in)
	}
}

func TestKSQuote(t *testing.T) {
	for _, w := range []string{"plain", "with space", "it's", `a"b`, "$6$x", "#c", "", `back\slash`, "it's $HOME `x`"} {
		words, _, err := ksSplit("cmd " + ksQuote(w))
		require.NoError(t, err, w)
		require.Len(t, words, 2, w)
		assert.Equal(t, w, words[1])
	}
}

// FuzzParseKickstart: whatever parses must format to something that parses
// to the same model.
func FuzzParseKickstart(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "kickstart", "handwritten.ks"))
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte("part / --size=1 --grow\n%post --log=/x\necho hi\n%end\n"))
	f.Add([]byte("user --name=a --gecos=\"A \\\"B\\\"\" # c\n"))
	f.Add([]byte("%addon com_redhat_kdump --disable\n%end\n%include x\n"))
	gold, err := os.ReadFile(filepath.Join("testdata", "golden", "rocky-9.0.lvm.full.ks"))
	require.NoError(f, err)
	f.Add(gold)
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseKickstart(data)
		if err != nil {
			return
		}
		out := ks.Format()
		again, err := ParseKickstart(out)
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%s", err, out)
		}
		if len(again.Lines) != len(ks.Lines) {
			t.Fatalf("line count %d != %d\n%q\n%q", len(again.Lines), len(ks.Lines), data, out)
		}
		assert.Equal(t, ks.Lines, again.Lines)
	})
}
