package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pxekit/pxekit/isosrc"
)

// ISO suite sizes: a 4 GiB image holding a 1 GiB stage2 file, as a
// RHEL-family DVD does (install.img is ~1 GiB on EL9).
const (
	isoBigFile    = 1 << 30
	isoFiller     = 3<<30 + 64<<20 // sparse on the source side; real blocks in the ISO
	isoReaders    = 50
	isoReaderSpan = 32 << 20 // bytes each concurrent reader reads
	isoRangeSize  = 8 << 20  // bytes per HTTP range request
	isoRangeReqs  = 64       // requests per HTTP run
	isoHTTPConc   = 8        // concurrent HTTP clients
)

const isoTreeinfo = `[header]
type = productmd.treeinfo
version = 1.2
[release]
name = Rocky Linux
short = Rocky
version = 9.0
[tree]
arch = x86_64
variants = BaseOS
[images-x86_64]
kernel = images/pxeboot/vmlinuz
initrd = images/pxeboot/initrd.img
[stage2]
mainimage = images/install.img
`

// runISO measures isosrc against plain files and nginx: open+detect of a
// 4 GiB image, sequential read of a 1 GiB file, 50 concurrent readers, and
// HTTP range serving.
func runISO(ctx context.Context, e *env) error {
	if _, err := exec.LookPath("xorriso"); err != nil {
		if err := e.install(ctx, "xorriso"); err != nil {
			return err
		}
	}
	scratch, err := os.MkdirTemp("/var/tmp", "pxekit-bench-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	if err := os.Chmod(scratch, 0o755); err != nil { // nginx workers run as nobody
		return err
	}
	root := filepath.Join(scratch, "root")
	big := filepath.Join(root, "images", "install.img")
	fmt.Fprintln(e.out, "building a 4 GiB test image with xorriso (about a minute)")
	if err := isoBuildTree(root, big); err != nil {
		return err
	}
	iso := filepath.Join(scratch, "bench.iso")
	cmd := exec.CommandContext(ctx, "xorriso", "-as", "mkisofs", "-quiet", "-iso-level", "3", "-R", "-J", "-o", iso, root)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("xorriso: %v\n%s", err, out)
	}
	// The "extracted" copy for plain-file and nginx baselines is the
	// source file itself: same bytes, same file system.
	if err := isoOpenDetect(ctx, e, iso); err != nil {
		return err
	}
	img, err := isosrc.Open(iso, isosrc.Limits{})
	if err != nil {
		return err
	}
	defer img.Close()
	// Warm the page cache for both copies, so no subject pays for the
	// disk: the comparison is about the read path, not the device.
	for _, p := range []string{iso, big} {
		if f, err := os.Open(p); err == nil {
			_, _ = io.Copy(io.Discard, f)
			f.Close()
		}
	}
	if err := isoSequential(ctx, e, img, big); err != nil {
		return err
	}
	if err := isoConcurrent(ctx, e, img, big); err != nil {
		return err
	}
	return isoHTTP(ctx, e, img, root, scratch)
}

func isoBuildTree(root, big string) error {
	for p, c := range map[string]string{
		".treeinfo":                 isoTreeinfo,
		".discinfo":                 "1657321435.1\n9.0\nx86_64\n",
		"images/pxeboot/vmlinuz":    "kernel",
		"images/pxeboot/initrd.img": "initrd",
		"EFI/BOOT/BOOTX64.EFI":      "shim",
		"EFI/BOOT/grubx64.efi":      "grub",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			return err
		}
	}
	// 1 GiB of incompressible data, written from a repeated 4 MiB block.
	block := make([]byte, 4<<20)
	_, _ = crand.Read(block)
	f, err := os.Create(big)
	if err != nil {
		return err
	}
	for written := 0; written < isoBigFile; written += len(block) {
		block[0]++
		if _, err := f.Write(block); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	filler := filepath.Join(root, "Packages", "filler.bin")
	if err := os.MkdirAll(filepath.Dir(filler), 0o755); err != nil {
		return err
	}
	ff, err := os.Create(filler)
	if err != nil {
		return err
	}
	if err := ff.Truncate(isoFiller); err != nil {
		ff.Close()
		return err
	}
	return ff.Close()
}

// isoOpenDetect: time and retained heap of Open + Detect.
func isoOpenDetect(ctx context.Context, e *env, iso string) error {
	var times, heaps []float64
	for range e.runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		img, err := isosrc.Open(iso, isosrc.Limits{})
		if err != nil {
			return err
		}
		d, err := isosrc.Detect(img)
		if err != nil {
			img.Close()
			return err
		}
		el := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(d)
		img.Close()
		times = append(times, float64(el.Microseconds())/1000)
		heaps = append(heaps, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1e6)
	}
	fi, _ := os.Stat(iso)
	fmt.Fprintf(e.out, "-- open + detect of a %.1f GiB image: median %.2f ms, retained heap %.2f MB (targets: 5 ms, 10 MB)\n",
		float64(fi.Size())/(1<<30), median(times), median(heaps))
	return nil
}

// isoSequential: one 1 GiB file read with 32 KiB reads (io.Copy's size).
func isoSequential(ctx context.Context, e *env, img *isosrc.Image, plain string) error {
	var viaISO, viaFile []float64
	for range e.runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f, err := img.Open("images/install.img")
		if err != nil {
			return err
		}
		mb, err := isoTimeCopy(f)
		f.Close()
		if err != nil {
			return err
		}
		viaISO = append(viaISO, mb)
		pf, err := os.Open(plain)
		if err != nil {
			return err
		}
		mb, err = isoTimeCopy(struct{ io.Reader }{pf}) // hide WriterTo for a like-for-like copy
		pf.Close()
		if err != nil {
			return err
		}
		viaFile = append(viaFile, mb)
	}
	e.table("sequential read of a 1 GiB file (page cache warm)", "pxekit", true, []row{
		{subject: "pxekit", value: median(viaISO), unit: "MB/s", note: "isosrc.Image file, io.Copy"},
		{subject: "plain file", value: median(viaFile), unit: "MB/s", note: "os.File of the same bytes, io.Copy"},
	})
	return nil
}

func isoTimeCopy(r io.Reader) (float64, error) {
	start := time.Now()
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return 0, err
	}
	if n != isoBigFile {
		return 0, fmt.Errorf("read %d bytes, want %d", n, isoBigFile)
	}
	return float64(n) / 1e6 / time.Since(start).Seconds(), nil
}

// isoConcurrent: 50 goroutines, one shared handle each side, ReadAt of
// 64 KiB blocks over distinct spans.
func isoConcurrent(ctx context.Context, e *env, img *isosrc.Image, plain string) error {
	f, err := img.OpenFile("images/install.img")
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := os.Open(plain)
	if err != nil {
		return err
	}
	defer pf.Close()
	var viaISO, viaFile []float64
	for range e.runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		viaISO = append(viaISO, isoParallel(f))
		viaFile = append(viaFile, isoParallel(pf))
	}
	e.table(fmt.Sprintf("%d concurrent readers, ReadAt 64 KiB, %d MiB each", isoReaders, isoReaderSpan>>20), "pxekit", true, []row{
		{subject: "pxekit", value: median(viaISO), unit: "MB/s", note: "one shared isosrc file"},
		{subject: "plain file", value: median(viaFile), unit: "MB/s", note: "one shared os.File"},
	})
	return nil
}

func isoParallel(r io.ReaderAt) float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range isoReaders {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			base := int64(i) * (isoBigFile - isoReaderSpan) / isoReaders
			for off := int64(0); off < isoReaderSpan; off += int64(len(buf)) {
				if _, err := r.ReadAt(buf, base+off); err != nil && !errors.Is(err, io.EOF) {
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(isoReaders*isoReaderSpan) / 1e6 / time.Since(start).Seconds()
}

// isoHTTP: range requests against http.FileServerFS(img) and against nginx
// serving the same file from disk.
func isoHTTP(ctx context.Context, e *env, img *isosrc.Image, root, scratch string) error {
	rows := []row{}
	for _, c := range []struct {
		subject, note string
		h             http.Handler
	}{
		{"pxekit", "isosrc Image.Handler (sendfile)", img.Handler()},
		{"pxekit FileServerFS", "http.FileServerFS(isosrc.Image), 32 KiB copies", http.FileServerFS(img)},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: c.h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		var mbs []float64
		if _, err := isoRanges(ctx, "http://"+ln.Addr().String()+"/images/install.img"); err != nil { // warm-up
			srv.Close()
			return err
		}
		for range e.runs {
			mb, err := isoRanges(ctx, "http://"+ln.Addr().String()+"/images/install.img")
			if err != nil {
				srv.Close()
				return err
			}
			mbs = append(mbs, mb)
		}
		srv.Close()
		rows = append(rows, row{subject: c.subject, value: median(mbs), unit: "MB/s", note: c.note})
	}

	nginxURL, stop, err := isoStartNginx(ctx, e, root, scratch)
	if err != nil {
		rows = append(rows, row{subject: "nginx", note: "not measured: " + err.Error()})
	} else {
		defer stop()
		var viaNginx []float64
		if _, err := isoRanges(ctx, nginxURL+"/images/install.img"); err != nil { // warm-up
			return err
		}
		for range e.runs {
			mb, err := isoRanges(ctx, nginxURL+"/images/install.img")
			if err != nil {
				return err
			}
			viaNginx = append(viaNginx, mb)
		}
		rows = append(rows, row{subject: "nginx", value: median(viaNginx), unit: "MB/s", note: "nginx-light, sendfile, extracted file"})
	}
	e.table(fmt.Sprintf("HTTP range requests (%d x %d MiB, %d clients, loopback)", isoRangeReqs, isoRangeSize>>20, isoHTTPConc), "pxekit", true, rows)
	return nil
}

func isoRanges(ctx context.Context, url string) (float64, error) {
	client := &http.Client{Timeout: time.Minute}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var total int64
	start := time.Now()
	for c := range isoHTTPConc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for range isoRangeReqs / isoHTTPConc {
				off := r.Int64N(isoBigFile - isoRangeSize)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+isoRangeSize-1))
				resp, err := client.Do(req)
				if err == nil {
					var n int64
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != http.StatusPartialContent || n != isoRangeSize) {
						err = fmt.Errorf("%s: status %d, %d bytes", url, resp.StatusCode, n)
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(total) / 1e6 / time.Since(start).Seconds(), nil
}

// isoStartNginx runs nginx in the foreground on a free loopback port with
// root as document root; stop kills it.
func isoStartNginx(ctx context.Context, e *env, root, scratch string) (string, func(), error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if err := e.install(ctx, "nginx-light"); err != nil {
			return "", nil, err
		}
		stopService(ctx, "nginx")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(scratch, "nginx.conf")
	body := fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s;
  scgi_temp_path %[1]s;
  server { listen %[2]s; root %[3]s; }
}
`, scratch, addr, root)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command("nginx", "-c", conf, "-g", "daemon off;")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	// SIGTERM lets nginx's master stop its workers; SIGKILL would orphan them.
	stop := func() { stopProcess(cmd, 5*time.Second) }
	// Wait until it answers.
	for i := 0; i < 50; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, errors.New("nginx did not start")
}
