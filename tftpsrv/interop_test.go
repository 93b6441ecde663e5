package tftpsrv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needTool skips when a client program is not installed; CI installs them
// (Debian packages curl, tftp-hpa, atftp), so there nothing skips.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s)", name, map[string]string{"curl": "curl", "tftp": "tftp-hpa", "atftp": "atftp"}[name])
	}
	return p
}

func runTool(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

func sameFile(t *testing.T, want []byte, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(want), sha256.Sum256(got), "checksum of %s (%d bytes, want %d)", path, len(got), len(want))
}

// interopTree is served to every client: a file that is not a multiple of
// any block size, one that is (an empty last block), and one large enough to
// roll the 16-bit block number over at blksize 512.
func interopTree(t *testing.T) (string, map[string][]byte) {
	files := map[string][]byte{
		"boot/shimx64.efi": randomBytes(t, 1_000_003),
		"exact.bin":        randomBytes(t, 1468*512),
		"rollover.img":     randomBytes(t, 65537*512+100),
	}
	return testTree(t, files), files
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return h, p
}

func TestInteropCurl(t *testing.T) {
	curl := needTool(t, "curl")
	dir, files := interopTree(t)
	var logs logBuffer
	for _, network := range []string{"udp4", "udp6"} {
		addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Logger: logs.logger(), MaxBlockSize: 65464}, network)
		for _, tc := range []struct {
			file string
			args []string
		}{
			{"boot/shimx64.efi", nil},
			{"boot/shimx64.efi", []string{"--tftp-blksize", "1468"}},
			{"exact.bin", []string{"--tftp-blksize", "1468"}},
			{"boot/shimx64.efi", []string{"--tftp-blksize", "8192"}},
			{"boot/shimx64.efi", []string{"--tftp-no-options"}},
			{"rollover.img", []string{"--tftp-blksize", "512"}},
		} {
			if network == "udp6" && tc.file == "rollover.img" {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s/%v", network, tc.file, tc.args), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				args := append([]string{"-sS", "--max-time", "60", "-o", out}, tc.args...)
				args = append(args, "tftp://"+addr+"/"+tc.file)
				runTool(t, "", curl, args...)
				sameFile(t, files[tc.file], out)
			})
		}
	}
	assert.NotContains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "blksize=8192")
}

func TestInteropTftpHpa(t *testing.T) {
	tftp := needTool(t, "tftp")
	dir, files := interopTree(t)
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir))}, "udp4")
	host, port := hostPort(t, addr)
	for _, file := range []string{"boot/shimx64.efi", "exact.bin", "rollover.img"} {
		t.Run(file, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			runTool(t, "", tftp, "-m", "binary", host, port, "-c", "get", file, out)
			sameFile(t, files[file], out)
		})
	}
	t.Run("missing", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command(tftp, "-m", "binary", host, port, "-c", "get", "missing.efi", out)
		b, _ := cmd.CombinedOutput()
		assert.Contains(t, string(b), "Error code 1")
		assert.NotContains(t, string(b), dir)
	})
}

func TestInteropAtftp(t *testing.T) {
	atftp := needTool(t, "atftp")
	dir, files := interopTree(t)
	var logs logBuffer
	addr := startServer(t, &Server{Handler: FileServer(os.DirFS(dir)), Logger: logs.logger()}, "udp4")
	host, port := hostPort(t, addr)
	for _, tc := range []struct {
		file string
		opts []string
	}{
		{"boot/shimx64.efi", nil},
		{"boot/shimx64.efi", []string{"blksize 1468"}},
		{"boot/shimx64.efi", []string{"blksize 1468", "windowsize 16"}},
		{"exact.bin", []string{"blksize 1468", "windowsize 16"}},
		{"boot/shimx64.efi", []string{"tsize 0", "blksize 1468", "windowsize 4"}},
		{"boot/shimx64.efi", []string{"timeout 2", "windowsize 4"}},
		{"rollover.img", []string{"windowsize 16"}},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.file, tc.opts), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var args []string
			for _, o := range tc.opts {
				args = append(args, "--option", o)
			}
			args = append(args, "-g", "-r", tc.file, "-l", out, host, port)
			runTool(t, "", atftp, args...)
			sameFile(t, files[tc.file], out)
		})
	}
	assert.Contains(t, logs.String(), "windowsize=16")
	assert.NotContains(t, logs.String(), "level=WARN")
	if bytes.Contains([]byte(logs.String()), []byte("level=ERROR")) {
		t.Log(logs.String())
	}
}
