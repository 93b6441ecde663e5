// Package chain is the composition the example programs share: one HTTP
// and one TFTP namespace over an ISO, a netboot tree, boot loaders, extra
// files and generated menus and answer files, with every client step
// reported to a progress tracker.
//
// Served layout (the same names over TFTP and HTTP where both make sense):
//
//	iso/...              the ISO's tree: the install repository (HTTP, TFTP)
//	image.iso            the ISO file itself, for Ubuntu's url= (HTTP)
//	boot/...             the tree holding kernel and initrd: the netboot
//	                     source when given, else the ISO (HTTP, TFTP)
//	answer/ks.cfg        kickstart; answer/preseed.cfg; answer/seed/user-data
//	                     and answer/seed/meta-data for Ubuntu (HTTP)
//	boot.ipxe            iPXE script (HTTP)
//	*grub.cfg*           GRUB menu, under any directory GRUB asks in (TFTP, HTTP)
//	pxelinux.cfg/*       pxelinux menu (TFTP)
//	shimx64.efi ...      boot loaders (TFTP, HTTP)
//	everything else      the -root directory, when given
package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/bootmenu"
	"github.com/pxekit/pxekit/dhcpsrv"
	"github.com/pxekit/pxekit/internal/bootfiles"
	"github.com/pxekit/pxekit/internal/progress"
	"github.com/pxekit/pxekit/isosrc"
	"github.com/pxekit/pxekit/tftpsrv"
)

// Site is what one boot server serves.
type Site struct {
	HTTPBase string // "http://10.0.0.1:8080/"
	Log      *slog.Logger
	Tracker  *progress.Tracker

	ISO     fs.FS // may be nil
	ISOFile string
	Netboot fs.FS // may be nil
	Loaders *bootfiles.Set
	Extra   fs.FS // may be nil

	generated map[string][]byte // HTTP/TFTP name -> content
	menus     map[bootmenu.Kind][]byte
	stages    map[string]progress.Stage // served name -> stage
	urls      []string
}

// Install describes the one OS a Site installs.
type Install struct {
	OSID        string
	Distro      *isosrc.Distro // nil when no ISO was given
	Spec        *answerfile.Spec
	Mirror      string
	Console     string
	Nameservers []netip.Addr
	// Args are extra kernel arguments (a syslog target, say).
	Args []bootmenu.Arg
}

// AddInstall renders the answer file and the three menus for in.
func (s *Site) AddInstall(in Install) error {
	s.init()
	media := Media{ISO: s.ISO, ISOFile: s.ISOFile, Netboot: s.Netboot}
	p, err := Prepare(s.HTTPBase, media, in, "answer/")
	if err != nil {
		return err
	}
	for name, data := range p.Answers {
		s.generated[name] = data
		s.stages[name] = progress.Answer
		s.urls = append(s.urls, s.HTTPBase+name)
	}
	for n, st := range p.Stages {
		s.stages[n] = st
	}
	menu := &bootmenu.Menu{
		Title: "pxekit: " + p.Entry.Title, Timeout: 5 * time.Second, Default: p.Entry.ID,
		Entries: []bootmenu.Entry{p.Entry, bootmenu.LocalEntry()},
	}
	dialect, err := Dialect(s.Loaders, in.OSID)
	if err != nil {
		return err
	}
	if s.menus, err = Menus(menu, s.HTTPBase, dialect); err != nil {
		return err
	}
	s.generated["boot.ipxe"] = s.menus[bootmenu.IPXE]
	s.stages["boot.ipxe"] = progress.Menu
	s.urls = append(s.urls, s.HTTPBase+"boot.ipxe", "tftp: grub/grub.cfg (and any */grub.cfg*)", "tftp: pxelinux.cfg/default")
	return nil
}

func (s *Site) init() {
	if s.generated == nil {
		s.generated = map[string][]byte{}
		s.menus = map[bootmenu.Kind][]byte{}
		s.stages = map[string]progress.Stage{}
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Tracker == nil {
		s.Tracker = progress.New(s.Log)
	}
}

// menuFor returns the generated menu a loader asks for by name: GRUB asks
// for grub.cfg (and per-host grub.cfg-01-MAC, grub.cfg-HEXIP) in whatever
// directory its prefix names; pxelinux for pxelinux.cfg/NAME.
func (s *Site) menuFor(name string) ([]byte, bool) {
	base := path.Base(name)
	switch {
	case base == "grub.cfg" || strings.HasPrefix(base, "grub.cfg-"):
		b, ok := s.menus[bootmenu.GRUB]
		return b, ok
	case path.Base(path.Dir(name)) == "pxelinux.cfg":
		b, ok := s.menus[bootmenu.PXELinux]
		return b, ok
	}
	return nil, false
}

// lookup resolves a served name to its content source.
func (s *Site) lookup(name string) (data []byte, fsys fs.FS, rel string, ok bool) {
	if b, ok := s.generated[name]; ok {
		return b, nil, "", true
	}
	if b, ok := s.menuFor(name); ok {
		return b, nil, "", true
	}
	if fsys, rel, ok := (Media{ISO: s.ISO, Netboot: s.Netboot}).Lookup(name); ok {
		return nil, fsys, rel, true
	}
	if s.Loaders != nil && s.Loaders.Has(name) {
		return nil, s.Loaders, name, true
	}
	if s.Extra != nil {
		return nil, s.Extra, name, true
	}
	return nil, nil, "", false
}

// Stage classifies a served name for progress reports.
func (s *Site) Stage(name string) (progress.Stage, bool) {
	s.init()
	if st, ok := s.stages[name]; ok {
		return st, true
	}
	if _, ok := s.menuFor(name); ok {
		return progress.Menu, true
	}
	if s.Loaders != nil && s.Loaders.Has(name) && !strings.HasSuffix(name, ".c32") {
		return progress.Bootloader, true
	}
	return "", false
}

// TFTPHandler serves the site over TFTP.
func (s *Site) TFTPHandler() tftpsrv.Handler {
	s.init()
	return tftpsrv.HandlerFunc(func(w tftpsrv.ResponseWriter, r *tftpsrv.Request) {
		data, fsys, rel, ok := s.lookup(r.Name)
		switch {
		case !ok:
			w.Error(fs.ErrNotExist)
		case fsys == nil:
			w.ServeContent(bytes.NewReader(data), int64(len(data)))
		default:
			tftpsrv.FileServer(fsys).ServeTFTP(w, &tftpsrv.Request{
				Name: rel, RawName: r.RawName, RemoteAddr: r.RemoteAddr, LocalAddr: r.LocalAddr, Options: r.Options,
			})
		}
	})
}

// TFTPEvent reports completed TFTP transfers as client steps.
func (s *Site) TFTPEvent(ev tftpsrv.Event) {
	if ev.Kind != tftpsrv.TransferEnd || ev.Probe {
		return
	}
	st, ok := s.Stage(ev.Name)
	if !ok {
		return
	}
	ip := ev.RemoteAddr.Addr()
	if ev.Err != nil {
		s.Tracker.ObserveIP(context.Background(), ip, st, ev.Name, slog.String("proto", "tftp"), slog.String("error", ev.Err.Error()))
		return
	}
	s.Tracker.ObserveIP(context.Background(), ip, st, ev.Name, slog.String("proto", "tftp"),
		slog.Int64("bytes", ev.Bytes), slog.Duration("took", ev.Duration))
}

// DHCPEvent binds MACs to addresses and reports DHCP steps.
func (s *Site) DHCPEvent(ev dhcpsrv.Event) { ObserveDHCP(s.Tracker, ev) }

// ObserveDHCP binds the client's MAC to its address (so that its TFTP and
// HTTP requests are known by MAC) and reports offers and ACKs as steps.
func ObserveDHCP(t *progress.Tracker, ev dhcpsrv.Event) {
	ip := ev.IP
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = ev.Client.RequestedIP
	}
	t.Bind(ev.MAC.String(), ip)
	if ev.Type != dhcpsrv.EventOffer && ev.Type != dhcpsrv.EventAck {
		return
	}
	attrs := []slog.Attr{slog.String("msg", string(ev.Type)), slog.String("arch", ev.Arch.String())}
	if ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
	}
	t.Observe(context.Background(), ev.MAC.String(), progress.DHCP, ev.BootFile, attrs...)
}

// HTTPHandler serves the site over HTTP, logging client steps. It serves
// content only: GET and HEAD (405 otherwise), files but no directory
// listings, and a clean 400 or 404 for paths no file can have.
func (s *Site) HTTPHandler() http.Handler {
	s.init()
	return ContentOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if st, ok := s.Stage(name); ok && r.Method == http.MethodGet {
			if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
				s.Tracker.ObserveIP(r.Context(), ap.Addr(), st, name, slog.String("proto", "http"))
			}
		}
		if name == "image.iso" && s.ISOFile != "" {
			http.ServeFile(w, r, s.ISOFile)
			return
		}
		data, fsys, rel, ok := s.lookup(name)
		switch {
		case !ok:
			http.NotFound(w, r)
		case fsys == nil:
			http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(data))
		default:
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + rel
			if rel != "" && strings.HasSuffix(r.URL.Path, "/") {
				r2.URL.Path += "/" // a directory asked as one; path.Clean dropped the slash
			}
			FileHandler(fsys).ServeHTTP(w, r2)
		}
	}))
}

// FileHandler serves the regular files of a tree over HTTP, with ranges
// and never a directory listing (a path ending in "/" is 404, and so is a
// directory, FIFO or device). An isosrc image offers its own handler, which
// sends regular files with sendfile(2); any other tree is served file by
// file with http.ServeContent on the file its FS opened, so that a
// *os.File (tftpsrv.Dir's) still reaches sendfile — http.FileServerFS
// wraps every file and copies through user space.
func FileHandler(fsys fs.FS) http.Handler {
	if t, ok := fsys.(interface{ Handler() http.Handler }); ok {
		return t.Handler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" || strings.HasSuffix(name, "/") || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		f, err := fsys.Open(name)
		switch {
		case errors.Is(err, fs.ErrPermission):
			http.Error(w, "403 Forbidden", http.StatusForbidden)
			return
		case err != nil:
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		rs, seekable := f.(io.ReadSeeker)
		if err != nil || !st.Mode().IsRegular() || !seekable {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, path.Base(name), st.ModTime(), rs)
	})
}

// BannerInfo is what the start-up banner shows besides the site.
type BannerInfo struct {
	OSID, ISO, Interface, DHCP, TFTPAddr, HTTPAddr string
	ServerIP                                       netip.Addr
}

// Banner prints what is served and where.
func (s *Site) Banner(w io.Writer, b BannerInfo) {
	s.init()
	fmt.Fprintf(w, "pxekit serving on %s (%s): DHCP %s, TFTP %s, HTTP %s\n", b.Interface, b.ServerIP, b.DHCP, b.TFTPAddr, b.HTTPAddr)
	if b.OSID != "" {
		fmt.Fprintf(w, "  installs: %s", b.OSID)
		if b.ISO != "" {
			fmt.Fprintf(w, " from %s", b.ISO)
		}
		fmt.Fprintln(w)
	}
	if s.Loaders != nil {
		for _, o := range s.Loaders.Origins() {
			fmt.Fprintf(w, "  loader:   %s\n", o)
		}
	}
	urls := append([]string(nil), s.urls...)
	sort.Strings(urls)
	for _, u := range urls {
		fmt.Fprintf(w, "  generated: %s\n", u)
	}
}

// PickInterface returns the interface to serve and the server address. An
// empty name picks the first up, non-loopback interface with IPv4. When
// needIface is false (no DHCP) and nothing fits, loopback is fine.
func PickInterface(name, serverIP string, needIface bool) (string, netip.Addr, error) {
	var ip netip.Addr
	if serverIP != "" {
		var err error
		if ip, err = netip.ParseAddr(serverIP); err != nil || !ip.Is4() {
			return "", netip.Addr{}, fmt.Errorf("-server-ip %q: not an IPv4 address", serverIP)
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", netip.Addr{}, err
	}
	for _, ifc := range ifs {
		if name != "" && ifc.Name != name {
			continue
		}
		if name == "" && (ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0) {
			continue
		}
		addr := firstIPv4(ifc)
		if !addr.IsValid() {
			if name != "" {
				return "", netip.Addr{}, fmt.Errorf("-iface %s has no IPv4 address", name)
			}
			continue
		}
		if !ip.IsValid() {
			ip = addr
		}
		return ifc.Name, ip, nil
	}
	if name != "" {
		return "", netip.Addr{}, fmt.Errorf("-iface %s: no such interface", name)
	}
	if !needIface {
		if !ip.IsValid() {
			ip = netip.MustParseAddr("127.0.0.1")
		}
		return "lo", ip, nil
	}
	return "", netip.Addr{}, errors.New("no up, non-loopback interface with an IPv4 address: name one with -iface")
}

func firstIPv4(ifc net.Interface) netip.Addr {
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// HTTPBase returns the URL clients use to reach the HTTP listen address.
func HTTPBase(serverIP netip.Addr, httpAddr string) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("-http-addr %q: %w", httpAddr, err)
	}
	if host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			serverIP = ip
		}
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(serverIP.String(), port), Path: "/"}
	if port == "80" {
		u.Host = serverIP.String()
	}
	return u.String(), nil
}

// Nameservers parses a comma-separated list; empty means the host's
// non-loopback resolvers, else the server itself (so that Debian's
// installer does not stop to ask before reading its preseed).
func Nameservers(list string, serverIP netip.Addr) ([]netip.Addr, error) {
	var out []netip.Addr
	if list != "" {
		for _, f := range strings.Split(list, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("-dns %q: %w", f, err)
			}
			out = append(out, ip)
		}
		return out, nil
	}
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[0] == "nameserver" {
				if ip, err := netip.ParseAddr(f[1]); err == nil && ip.Is4() && !ip.IsLoopback() {
					out = append(out, ip)
				}
			}
		}
	}
	if len(out) == 0 {
		out = append(out, serverIP)
	}
	return out, nil
}

// PortError explains the usual reasons a listener could not start.
func PortError(what, addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s on %s: %w: ports below 1024 (DHCP 67 and 4011, TFTP 69) need root or CAP_NET_BIND_SERVICE; run with sudo, or use -dhcp off -tftp-addr :6969 -http-addr :8080", what, addr, err)
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, dhcpsrv.ErrAlreadyServing):
		return fmt.Errorf("%s on %s: %w: another server (dnsmasq, dhcpd, tftpd-hpa, a second pxekit?) holds the port; stop it or choose another address", what, addr, err)
	}
	return fmt.Errorf("%s on %s: %w", what, addr, err)
}

// BootOptions adjust the boot decision of the examples.
type BootOptions struct {
	// Proxy is proxyDHCP mode.
	Proxy bool
	// IPXEScript gives iPXE clients the HTTP script; false treats them as
	// plain PXE clients.
	IPXEScript bool
	// HaveSNPOnly says ipxe/snponly.efi is served.
	HaveSNPOnly bool
}

// BootPolicy wraps a boot table with the examples' policy. Under proxyDHCP,
// a UEFI PXE client's GRUB reads its TFTP server from the address server's
// ACK, which names no boot server, so GRUB stops at its prompt; such clients
// chainload iPXE instead, which understands proxyDHCP and then fetches the
// HTTP script (what pixiecore and smee do). Full mode keeps shim and GRUB,
// the only chain that works under Secure Boot.
func BootPolicy(table *dhcpsrv.BootTable, o BootOptions) dhcpsrv.BootFunc {
	return func(c dhcpsrv.Client) (dhcpsrv.BootAnswer, error) {
		if !o.IPXEScript {
			c.IPXE = false
		}
		uefiPXE := !c.IPXE && !c.HTTPClient && (c.Arch == dhcpsrv.ArchEFIX64 || c.Arch == dhcpsrv.ArchEFIBC)
		if o.Proxy && o.HaveSNPOnly && uefiPXE {
			return dhcpsrv.BootAnswer{File: "ipxe/snponly.efi", ServerIP: table.ServerIP, VendorClass: "PXEClient"}, nil
		}
		return table.Decide(c)
	}
}
