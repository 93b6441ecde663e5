package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The loss case: lossClients clients download lossSize each at once, with
// curl at blksize 1468 (a full 1500-byte frame), from a server in another
// network namespace, over a link losing lossRate of the packets in each
// direction.
const (
	lossClients = 20
	lossMiB     = 16
	lossRate    = 0.02
	lossSeed    = 7440

	// lossMiBEnv overrides lossMiB, for a quick check of the setup.
	lossMiBEnv = "PXEKIT_BENCH_LOSS_MIB"
)

// runTFTPLoss measures completion and time under packet loss. Every server
// uses a 1 s first retransmission timeout (atftpd is told so; its default
// is 5 s, the others' is 1 s), so the difference is in how they recover.
// The four servers run at the same time, each with its own clients: the
// case is dominated by waiting for retransmissions, not by CPU, and one
// slot of ten minutes keeps the suite short while all servers see the same
// machine load and link.
func runTFTPLoss(ctx context.Context, e *env) error {
	self, dir, out, cleanup, err := tftpSetup(ctx, e, "tftploss")
	if err != nil {
		return err
	}
	defer cleanup()
	mib := lossMiB
	if v, err := strconv.Atoi(os.Getenv(lossMiBEnv)); err == nil && v > 0 {
		mib = v
	}
	sum, err := writeRandom(filepath.Join(dir, "loss.img"), int64(mib)<<20)
	if err != nil {
		return err
	}
	if _, err := writeRandom(filepath.Join(dir, "ready"), 10); err != nil {
		return err
	}
	atftpd, err := atftpdBinary(ctx, out)
	if err != nil {
		fmt.Fprintf(e.out, "atftpd unavailable: %v\n", err)
	}

	ln, err := newLossNet(ctx, lossRate, lossSeed)
	if err != nil {
		return err
	}
	defer ln.close()
	var running []*tftpPeer
	defer func() {
		for _, p := range running {
			p.stop()
		}
	}()
	for _, p := range tftpPeers(self, atftpd, ln.srvAddr, 1) {
		p.srvNS, p.cliNS = ln.srvNS, ln.cliNS
		if err := p.start(ctx, dir); err != nil {
			fmt.Fprintf(e.out, "skipping %s: %v\n", p.name, err)
			continue
		}
		running = append(running, p)
	}

	type outcome struct {
		done          int
		wall, slowest time.Duration
		firstErr      error
	}
	results := map[string][]outcome{}
	for run := range e.runs {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range running {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var o outcome
				var omu sync.Mutex
				var cw sync.WaitGroup
				start := time.Now()
				for i := range lossClients {
					cw.Add(1)
					go func() {
						defer cw.Done()
						dst := filepath.Join(out, fmt.Sprintf("%s-%d-%d", p.name, run, i))
						d, err := p.downloadChecked(ctx, "loss.img", dst, sum, 1468, 0)
						omu.Lock()
						defer omu.Unlock()
						if err != nil {
							if o.firstErr == nil {
								o.firstErr = err
							}
							return
						}
						o.done++
						o.slowest = max(o.slowest, d)
					}()
				}
				cw.Wait()
				o.wall = time.Since(start)
				mu.Lock()
				results[p.name] = append(results[p.name], o)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}

	var done, wall, slow []row
	for _, p := range running {
		var ds, ws, ss []float64
		note := ""
		for _, o := range results[p.name] {
			ds = append(ds, float64(o.done))
			ws = append(ws, o.wall.Seconds())
			ss = append(ss, o.slowest.Seconds())
			if o.firstErr != nil && note == "" {
				note = "first failure: " + o.firstErr.Error()
			}
		}
		done = append(done, row{subject: p.name, value: median(ds), unit: fmt.Sprintf("of %d", lossClients), note: note})
		wall = append(wall, row{subject: p.name, value: median(ws), unit: "s", note: "until the last client ended"})
		slow = append(slow, row{subject: p.name, value: median(ss), unit: "s", note: "slowest completed client"})
	}
	title := fmt.Sprintf("%d clients × %d MiB, blksize 1468 (curl), %.0f %% loss each way", lossClients, mib, lossRate*100)
	e.table(title+": completed", "pxekit", true, done)
	e.table(title+": total time", "pxekit", false, wall)
	e.table(title+": slowest client", "pxekit", false, slow)
	for _, rs := range [][]row{wall, slow} {
		if r, ok := bestPeer(rs, false); ok {
			fmt.Fprintf(e.out, "pxekit vs best peer (%s): %s\n", r.subject, ratioText(rs, r, false))
		}
	}
	for _, p := range running {
		p.stop()
	}
	running = nil
	ln.close()
	fmt.Fprintf(e.out, "link: %s\n", ln.stats())
	return nil
}

// bestPeer is the best row other than pxekit's.
func bestPeer(rows []row, higherIsBetter bool) (row, bool) {
	var best row
	found := false
	for _, r := range rows {
		if r.subject == "pxekit" || r.value <= 0 {
			continue
		}
		if !found || (higherIsBetter && r.value > best.value) || (!higherIsBetter && r.value < best.value) {
			best, found = r, true
		}
	}
	return best, found
}

// ratioText is pxekit's advantage over peer, above 1 when pxekit is better.
func ratioText(rows []row, peer row, higherIsBetter bool) string {
	for _, r := range rows {
		if r.subject != "pxekit" || r.value <= 0 {
			continue
		}
		if higherIsBetter {
			return fmt.Sprintf("%.2fx", r.value/peer.value)
		}
		return fmt.Sprintf("%.2fx", peer.value/r.value)
	}
	return "-"
}
