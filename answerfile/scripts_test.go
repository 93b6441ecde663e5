package answerfile

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pxekit/pxekit/answerfile/kickstart"
)

// shellSnippets returns every piece of shell a rendered file carries, by
// name: kickstart %pre/%post bodies, autoinstall late-commands, the preseed
// late_command and the script it decodes.
func shellSnippets(t *testing.T, f rendered) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch f.kind {
	case KindKickstart:
		ks, err := kickstart.Parse(f.data)
		require.NoError(t, err)
		for i, l := range ks.Lines {
			if l.Section != nil && l.Section.Name != "packages" {
				out[l.Section.Name+string(rune('0'+i%10))] = strings.Join(l.Section.Body, "\n") + "\n"
			}
		}
	case KindAutoinstall:
		var doc struct {
			Autoinstall struct {
				LateCommands []string `yaml:"late-commands"`
			} `yaml:"autoinstall"`
		}
		require.NoError(t, yaml.Unmarshal(f.data, &doc))
		for i, c := range doc.Autoinstall.LateCommands {
			out["late-commands["+string(rune('0'+i))+"]"] = c + "\n"
		}
	case KindPreseed:
		for _, l := range strings.Split(string(f.data), "\n") {
			if cmd, ok := strings.CutPrefix(l, "d-i preseed/late_command string "); ok {
				out["late_command"] = cmd + "\n"
				m := regexp.MustCompile(`echo ([A-Za-z0-9+/=]+) \| base64 -d`).FindStringSubmatch(cmd)
				require.NotNil(t, m)
				script, err := base64.StdEncoding.DecodeString(m[1])
				require.NoError(t, err)
				out["post script"] = string(script)
			}
			if cmd, ok := strings.CutPrefix(l, "d-i partman/early_command string "); ok {
				out["early_command"] = cmd + "\n"
			}
		}
	}
	return out
}

// TestShellSyntax parses every generated shell snippet with sh -n.
func TestShellSyntax(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	type snippet struct{ name, code string }
	var all []snippet
	for _, f := range renderMatrix(t) {
		if f.kind == kindMetaData {
			continue
		}
		snips := shellSnippets(t, f)
		require.NotEmpty(t, snips, f.name)
		for name, code := range snips {
			all = append(all, snippet{f.name + " " + name, code})
		}
	}
	syntax := func(code string) ([]byte, error) {
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(code)
		return cmd.CombinedOutput()
	}
	// One sh -n over every snippet wrapped in a function; one by one only
	// to name a culprit.
	var b strings.Builder
	for i, s := range all {
		fmt.Fprintf(&b, "pxekit_snippet_%d() {\n%s\n}\n", i, s.code)
	}
	if _, err := syntax(b.String()); err == nil {
		return
	}
	for _, s := range all {
		out, err := syntax(s.code)
		assert.NoError(t, err, "%s: %s\n%s", s.name, out, s.code)
	}
}

// TestCallbackRequest runs the callback part of each rendered file against
// a local server, with the tools the installers use (curl; busybox wget for
// Debian), and checks the request the package documentation promises.
func TestCallbackRequest(t *testing.T) {
	type got struct {
		method, ctype, query string
		body                 []byte
	}
	var mu sync.Mutex
	var reqs []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.Method, r.Header.Get("Content-Type"), r.URL.RawQuery, b})
		mu.Unlock()
	}))
	defer srv.Close()

	cases := []struct {
		os         string
		kind       Kind
		tool       string
		withReport bool
	}{
		{"rocky-9.0", KindKickstart, "curl", true},
		{"kylin-v10", KindKickstart, "curl", false},
		{"ubuntu-22.04", KindAutoinstall, "curl", true},
		{"debian-12", KindPreseed, "busybox", true},
		{"debian-9", KindPreseed, "busybox", false},
	}
	for _, c := range cases {
		t.Run(c.os, func(t *testing.T) {
			tool, err := exec.LookPath(c.tool)
			if err != nil {
				t.Skipf("%s not installed", c.tool)
			}
			s := DemoSpec("")
			s.Callback.URL = srv.URL + "/done?host=demo"
			data, err := Render(c.os, c.kind, s)
			require.NoError(t, err)
			root := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(root, "root"), 0o755))
			report := `{"hostname":"demo","os":"x","status":"ok","checks":[{"name":"user ops","ok":true}]}`
			if c.withReport {
				require.NoError(t, os.WriteFile(filepath.Join(root, "root", "pxekit-report.json"), []byte(report+"\n"), 0o644))
			}
			snips := shellSnippets(t, rendered{kind: c.kind, data: data})
			var code string
			switch c.kind {
			case KindKickstart:
				for _, body := range snips {
					// The %post --nochroot section; the chroot one carries
					// the first-boot script, which posts too.
					if strings.Contains(body, "Content-Type") && strings.Contains(body, "/mnt/sysimage") {
						code = body
					}
				}
				code = strings.ReplaceAll(code, "/mnt/sysimage", root)
			case KindAutoinstall:
				for i := 0; i < len(snips); i++ {
					b := snips["late-commands["+string(rune('0'+i))+"]"]
					if strings.Contains(b, "pxekit-report.json") && !strings.Contains(b, "in-target") {
						code += b
					}
				}
				code = strings.ReplaceAll(code, "/target", root)
			case KindPreseed:
				lc := snips["late_command"]
				i := strings.Index(lc, "[ -s /target")
				require.GreaterOrEqual(t, i, 0)
				code = strings.ReplaceAll(lc[i:], "/target", root)
			}
			require.NotEmpty(t, code)
			bin := t.TempDir()
			if c.tool == "busybox" {
				require.NoError(t, os.Symlink(tool, filepath.Join(bin, "wget")))
			}
			mu.Lock()
			reqs = nil
			mu.Unlock()
			cmd := exec.Command("sh", "-c", code)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s\n%s", out, code)

			mu.Lock()
			defer mu.Unlock()
			require.Len(t, reqs, 1, string(out))
			r := reqs[0]
			assert.Equal(t, http.MethodPost, r.method)
			assert.Equal(t, "application/json", r.ctype)
			assert.Equal(t, "host=demo", r.query)
			var body struct {
				Hostname, OS, Status string
				Checks               []struct {
					Name string
					OK   bool
				}
			}
			require.NoError(t, json.Unmarshal(r.body, &body), string(r.body))
			assert.Equal(t, "demo", body.Hostname)
			if c.withReport {
				assert.Equal(t, "ok", body.Status)
				assert.Len(t, body.Checks, 1)
			} else {
				assert.Equal(t, "unknown", body.Status)
				assert.Equal(t, c.os, body.OS)
			}
		})
	}
}

// TestKickstartPreDiskPick runs the %pre of a rendered kickstart against a
// fake /sys (see TestDiskPickScript for the rule itself): zram, CD-ROMs and
// removable disks are skipped, the smallest remaining disk is taken.
func TestKickstartPreDiskPick(t *testing.T) {
	data, err := Render("rocky-9.0", KindKickstart, DemoSpec(""))
	require.NoError(t, err)
	ks, err := kickstart.Parse(data)
	require.NoError(t, err)
	pre := ks.Sections("pre")
	require.Len(t, pre, 1)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "disk.ks")
	body := strings.ReplaceAll(strings.Join(pre[0].Body, "\n"), diskInclude, out)
	body = strings.ReplaceAll(body, "/tmp/pxekit-disk.sh", filepath.Join(tmp, "pick.sh"))
	root := fakeSys(t, []fakeDisk{
		{name: "zram0", mib: 4096}, {name: "sr0", mib: 9000, cd: true}, {name: "sdb", mib: 8000, removable: true},
		{name: "loop0", mib: 900}, {name: "nvme0n1", mib: 200000}, {name: "sda", mib: 900000},
	}, nil)
	cmd := exec.Command("sh", "-c", body)
	cmd.Env = append(os.Environ(), "PXEKIT_ROOT="+root)
	cmdOut, err := cmd.CombinedOutput()
	require.NoError(t, err, string(cmdOut))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "ignoredisk --only-use=nvme0n1\n", string(got))
}
