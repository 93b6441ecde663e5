package chain

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/internal/progress"
)

func TestBootPolicy(t *testing.T) {
	table := &dhcpsrv.BootTable{ServerIP: netip.MustParseAddr("10.0.0.1"), HTTPBase: "http://10.0.0.1:8080/"}
	uefi := dhcpsrv.Client{Arch: dhcpsrv.ArchEFIX64, PXE: true}
	ipxe := dhcpsrv.Client{Arch: dhcpsrv.ArchBIOS, PXE: true, IPXE: true}
	for _, tc := range []struct {
		name   string
		opt    BootOptions
		client dhcpsrv.Client
		want   string
	}{
		{"full mode keeps GRUB for UEFI", BootOptions{IPXEScript: true, HaveSNPOnly: true}, uefi, "grubx64.efi"},
		{"proxy chainloads iPXE for UEFI", BootOptions{Proxy: true, IPXEScript: true, HaveSNPOnly: true}, uefi, "ipxe/snponly.efi"},
		{"proxy without iPXE binary keeps GRUB", BootOptions{Proxy: true, IPXEScript: true}, uefi, "grubx64.efi"},
		{"iPXE gets the script", BootOptions{Proxy: true, IPXEScript: true, HaveSNPOnly: true}, ipxe, "http://10.0.0.1:8080/boot.ipxe"},
		{"iPXE as plain PXE", BootOptions{HaveSNPOnly: true}, ipxe, "pxelinux.0"},
	} {
		ans, err := BootPolicy(table, tc.opt)(tc.client)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, ans.File, tc.name)
	}
}

func TestMenuAndStageRouting(t *testing.T) {
	s := &Site{}
	s.init()
	s.menus[bootmenu.GRUB] = []byte("grub")
	s.menus[bootmenu.PXELinux] = []byte("pxe")
	s.stages["boot/linux"] = progress.Kernel
	for name, want := range map[string]string{
		"grub/grub.cfg":                     "grub",
		"EFI/BOOT/grub.cfg":                 "grub",
		"grub.cfg-01-52-54-00-12-34-56":     "grub",
		"pxelinux.cfg/default":              "pxe",
		"pxelinux.cfg/01-52-54-00-12-34-56": "pxe",
	} {
		b, ok := s.menuFor(name)
		require.True(t, ok, name)
		assert.Equal(t, want, string(b), name)
		st, _ := s.Stage(name)
		assert.Equal(t, progress.Menu, st, name)
	}
	_, ok := s.menuFor("grub/x86_64-efi/command.lst")
	assert.False(t, ok)
	st, ok := s.Stage("boot/linux")
	assert.True(t, ok)
	assert.Equal(t, progress.Kernel, st)
}

func TestHTTPBaseAndNameservers(t *testing.T) {
	ip := netip.MustParseAddr("10.77.0.1")
	for addr, want := range map[string]string{
		":8080":          "http://10.77.0.1:8080/",
		":80":            "http://10.77.0.1/",
		"127.0.0.1:8089": "http://127.0.0.1:8089/",
	} {
		got, err := HTTPBase(ip, addr)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := HTTPBase(ip, "8080")
	assert.Error(t, err)
	ns, err := Nameservers("10.0.0.53, 10.0.0.54", ip)
	require.NoError(t, err)
	assert.Len(t, ns, 2)
	_, err = Nameservers("bogus", ip)
	assert.Error(t, err)
}

func TestHTTPServesTreesRangesAndGenerated(t *testing.T) {
	s := &Site{
		HTTPBase: "http://10.0.0.1:8080/",
		ISO:      fstest.MapFS{"BaseOS/repodata/repomd.xml": {Data: []byte("0123456789")}},
		Extra:    fstest.MapFS{"hello.txt": {Data: []byte("hi")}},
	}
	s.init()
	s.generated["answer/ks.cfg"] = []byte("text\n")
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()

	get := func(p, rng string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		require.NoError(t, err)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/iso/BaseOS/repodata/repomd.xml", "bytes=2-4")
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, "234", body)
	for _, dir := range []string{"/iso/BaseOS/", "/iso/BaseOS", "/iso/", "/"} {
		code, body = get(dir, "")
		assert.Equal(t, http.StatusNotFound, code, "no directory listing: %s", dir)
		assert.NotContains(t, body, "repodata", dir)
	}
	code, body = get("/answer/ks.cfg", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "text\n", body)
	code, body = get("/hello.txt", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hi", body)
	code, _ = get("/iso/../../etc/passwd", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = get("/missing", "")
	assert.Equal(t, http.StatusNotFound, code)
}
