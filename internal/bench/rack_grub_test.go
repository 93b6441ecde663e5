package main

import (
	"bufio"
	"context"
	"errors"
	"hash/crc32"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/internal/simclient"
	"github.com/pxekit/pxekit/tftpsrv"
	"golang.org/x/sys/unix"
)

// fleetLikeMenu is a menu as fleet renders it for Debian's signed GRUB.
func fleetLikeMenu(t *testing.T, d bootmenu.GRUBDialect) string {
	t.Helper()
	m := &bootmenu.Menu{Entries: []bootmenu.Entry{
		{ID: "install", Kernel: "profiles/debian12/boot/debian-installer/amd64/linux",
			Initrds: []string{"profiles/debian12/boot/debian-installer/amd64/initrd.gz"},
			Args:    []bootmenu.Arg{bootmenu.KV("url", "http://10.232.0.1:8080/hosts/02-fe-00-00-00-07/Zm9v/preseed.cfg")}},
		{ID: "local", Local: bootmenu.LocalChainload},
	}}
	b, err := bootmenu.Render(m, bootmenu.GRUB, bootmenu.Options{HTTPBase: "http://10.232.0.1:8080/", GRUBDialect: d})
	require.NoError(t, err)
	return string(b)
}

// TestSimulatedGRUBFollowsTheMenu: with the module loaded the paths of
// fleet's menu lead to its HTTP side; refused, to bare TFTP paths; the
// classic menu never asks for a module.
func TestSimulatedGRUBFollowsTheMenu(t *testing.T) {
	c := &fleetClient{job: &fleetJob{}, server: netip.MustParseAddr(benchSrvIP)}
	for _, loaded := range []bool{true, false} {
		var asked []string
		vars, err := grubTopLevel(fleetLikeMenu(t, bootmenu.GRUBDebian), func(mod string) (bool, error) {
			asked = append(asked, mod)
			return loaded, nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"http"}, asked)
		kernel, _, _, err := parseGRUBMenu(fleetLikeMenu(t, bootmenu.GRUBDebian))
		require.NoError(t, err)
		p := simclient.ExpandGRUBVars(kernel, vars)
		u, name, err := c.menuURL(p)
		require.NoError(t, err)
		assert.Equal(t, "profiles/debian12/boot/debian-installer/amd64/linux", name)
		if loaded {
			assert.Equal(t, "(http,10.232.0.1:8080)/profiles/debian12/boot/debian-installer/amd64/linux", p)
			assert.Equal(t, "http://10.232.0.1:8080/profiles/debian12/boot/debian-installer/amd64/linux", u)
		} else {
			assert.Equal(t, "/profiles/debian12/boot/debian-installer/amd64/linux", p, "a bare path: TFTP")
		}
	}
	vars, err := grubTopLevel(string(classicGRUBConfig(benchSrvIP)), func(string) (bool, error) {
		t.Fatal("the classic menu loads no module")
		return false, nil
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"default": "install", "timeout": "3"}, vars)
}

func TestGRUBTopLevel(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		cfg     string
		mods    map[string]bool
		want    map[string]string
		asked   []string
		wantErr string
	}{
		// GRUB 2.06's insmod is true as a condition even when it failed.
		{"insmod always true", "if insmod http; then\nset a=1\nelse\nset a=2\nfi\n", map[string]bool{}, map[string]string{"a": "1"}, []string{"http"}, ""},
		{"http device without module", "if test -d '(http,h:8080)/'; then\nset a=1\nelse\nset a=2\nfi\n", map[string]bool{}, map[string]string{"a": "2"}, []string{"http"}, ""},
		{"http device with module", "if test -d '(http,h:8080)/'; then\nset a=1\nelse\nset a=2\nfi\n", map[string]bool{"http": true}, map[string]string{"a": "1"}, []string{"http"}, ""},
		{"module loaded once", "insmod http\nif test -d (http,h)/; then\nset a=1\nfi\nif test -e (http,h)/x; then\nset b=1\nfi\n", map[string]bool{"http": true}, map[string]string{"a": "1", "b": "1"}, []string{"http"}, ""},
		{"refused module is tried again", "insmod http\nif test -d (http,h)/; then\nset a=1\nfi\n", map[string]bool{}, map[string]string{}, []string{"http", "http"}, ""},
		{"tftp and root", "if test -d (tftp,h)/; then\nset a=1\nfi\nif test -d /; then\nset b=1\nfi\nif test -d (hd0)/; then\nset c=1\nfi\n", nil, map[string]string{"a": "1", "b": "1"}, nil, ""},
		{"nested, outer false", "if test -d (http,h)/; then\n if insmod gzio; then\n  set a=1\n fi\nfi\n", map[string]bool{}, map[string]string{}, []string{"http"}, ""},
		{"expansion", "set r='(http,h)'\nset p=${r}/x\n", nil, map[string]string{"r": "(http,h)", "p": "(http,h)/x"}, nil, ""},
		{"entries are not run", "menuentry 'a' {\n set a=1\n if insmod http; then\n fi\n}\nset b=2\n", map[string]bool{"http": true}, map[string]string{"b": "2"}, nil, ""},
		{"odd module names are not asked for", "insmod ../x\ninsmod 'a b'\n", nil, map[string]string{}, nil, ""},
		{"fi without if", "fi\n", nil, nil, nil, "fi without if"},
		{"else without if", "else\n", nil, nil, nil, "else without if"},
		{"if without fi", "if insmod http; then\nset a=1\n", map[string]bool{}, nil, []string{"http"}, "if without fi"},
		{"insmod fails hard", "if insmod broken; then\nfi\n", nil, nil, []string{"broken"}, "boom"},
		{"insmod fails hard outside if", "insmod broken\n", nil, nil, []string{"broken"}, "boom"},
		{"unterminated quote", "set a='x\n", nil, nil, nil, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			vars, err := grubTopLevel(tt.cfg, func(mod string) (bool, error) {
				asked = append(asked, mod)
				if mod == "broken" {
					return false, boom
				}
				return tt.mods[mod], nil
			})
			assert.Equal(t, tt.asked, asked)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, vars)
		})
	}
	many := strings.Repeat("set a=b\n", 10) + func() string {
		var b strings.Builder
		for i := 0; i <= maxGRUBVars; i++ {
			b.WriteString("set v" + strings.Repeat("x", i) + "=1\n")
		}
		return b.String()
	}()
	_, err := grubTopLevel(many, nil)
	assert.ErrorContains(t, err, "more than")
}

// FuzzGRUBTopLevel: a menu from the network never panics the simulated
// GRUB, and it asks insmod only for module names made of word characters.
func FuzzGRUBTopLevel(f *testing.F) {
	f.Add("set a=1\nif test -d '(http,10.0.0.1:8080)/'; then\n\tset pxekit_http='(http,10.0.0.1:8080)'\nfi\n")
	f.Add("insmod http\nif insmod http; then\nfi\n")
	f.Add(string(classicGRUBConfig(benchSrvIP)))
	f.Add("if insmod x; then\nelse\nfi\nfi\nmenuentry {\n{\n}\nset b=${a}$a\n")
	f.Fuzz(func(t *testing.T, cfg string) {
		_, _ = grubTopLevel(cfg, func(mod string) (bool, error) {
			if mod == "" || strings.Trim(mod, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
				t.Fatalf("insmod %q", mod)
			}
			return len(mod)%2 == 0, nil
		})
	})
}

// TestGRUBInsmodOverTFTP runs the simulated insmod against pxekit's TFTP
// server on loopback: the module read and checked with Secure Boot off, a
// refused read with it on, a wrong or missing expected module an error.
func TestGRUBInsmodOverTFTP(t *testing.T) {
	mod := []byte("\x7fELF http module " + strings.Repeat("x", 3000))
	files := fstest.MapFS{bootmenu.LoaderGRUBHTTPMod: {Data: mod}}
	conn, err := tftpsrv.Listen("127.0.0.1:0")
	require.NoError(t, err)
	reads := make(chan string, 16)
	srv := &tftpsrv.Server{Handler: tftpsrv.HandlerFunc(func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		reads <- r.Name
		tftpsrv.FileServer(files).ServeTFTP(w, r)
	})}
	go func() { _ = srv.Serve(conn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	port := conn.LocalAddr().(*net.UDPAddr).Port
	good := fleetSum{Size: int64(len(mod)), CRC: crc32.Checksum(mod, castagnoli)}
	tests := []struct {
		name       string
		sums       map[string]fleetSum
		secureBoot bool
		mod        string
		want       bool
		wantErr    bool
	}{
		{"loaded", map[string]fleetSum{bootmenu.LoaderGRUBHTTPMod: good}, false, "http", true, false},
		{"not expected, still loaded", nil, false, "http", true, false},
		{"secure boot refuses", map[string]fleetSum{bootmenu.LoaderGRUBHTTPMod: good}, true, "http", false, false},
		{"wrong content", map[string]fleetSum{bootmenu.LoaderGRUBHTTPMod: {Size: 1, CRC: 2}}, false, "http", false, true},
		{"missing, not expected", nil, false, "gzio", false, false},
		{"missing but expected", map[string]fleetSum{"grub/x86_64-efi/gzio.mod": good}, false, "gzio", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fleetClient{job: &fleetJob{Sums: tt.sums, SecureBoot: tt.secureBoot},
				server: netip.MustParseAddr("127.0.0.1"), ip: netip.MustParseAddr("127.0.0.1"), tftpPort: port}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := c.grubInsmod(ctx, tt.mod)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
			select {
			case name := <-reads:
				assert.Equal(t, "grub/x86_64-efi/"+tt.mod+".mod", strings.TrimPrefix(name, "/"), "the server sees the read, Secure Boot or not")
			case <-ctx.Done():
				t.Fatal("no read reached the server")
			}
		})
	}
}

// TestGRUBHTTPClientSocket: the simulated GRUB's HTTP connections carry
// GRUB's small segments and window (loopback only).
func TestGRUBHTTPClientSocket(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	mss := make(chan int, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			mss <- -1
			return
		}
		defer conn.Close()
		rc, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			mss <- -1
			return
		}
		v := -1
		_ = rc.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
		mss <- v
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
	}()
	c := &fleetClient{job: &fleetJob{}, ip: netip.MustParseAddr("127.0.0.1")}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	size, _, body, err := c.get(ctx, c.grubHTTPClient(), "http://"+ln.Addr().String()+"/k")
	require.NoError(t, err)
	assert.Equal(t, int64(2), size)
	assert.Equal(t, "ok", string(body))
	got := <-mss
	assert.Positive(t, got)
	assert.LessOrEqual(t, got, 536, "the server sends GRUB-sized segments")
	assert.Positive(t, c.rx.Load(), "bytes counted")
}
