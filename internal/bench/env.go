package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// env carries what every suite shares: repetition count and output.
type env struct {
	runs int
	out  io.Writer
}

// install makes sure the Debian packages are present, installing the missing
// ones with apt-get. Package post-install scripts may start the daemons; the
// suites stop them again (see stopService) before measuring.
func (e *env) install(ctx context.Context, pkgs ...string) error {
	var missing []string
	for _, p := range pkgs {
		if exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", p).Run() != nil {
			missing = append(missing, p)
			continue
		}
		out, _ := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", p).Output()
		if !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("need root to apt-get install %s", strings.Join(missing, " "))
	}
	fmt.Fprintf(e.out, "installing %s\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", args[0], err, out)
		}
	}
	return nil
}

// stopProcess ends a started command: SIGTERM first, so that a server can
// stop its own workers, SIGKILL after grace; it returns once cmd is reaped.
func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	terminate(cmd.Process, done, grace)
}

// terminate is stopProcess for a process whose Wait another goroutine
// runs; exited closes when it has.
func terminate(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}

// stopService stops a daemon that a package's post-install script may have
// started, so that it does not hold the ports a suite is about to use.
func stopService(ctx context.Context, name string) {
	_ = exec.CommandContext(ctx, "service", name, "stop").Run()
	_ = exec.CommandContext(ctx, "pkill", "-x", name).Run()
}

// median returns the middle of xs (the mean of the two middle values for an
// even count); zero for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// row is one measured subject in a comparison table.
type row struct {
	subject string  // "pxekit", "tftpd-hpa", ...
	value   float64 // median of the runs
	unit    string
	note    string
}

// table prints rows with each value's ratio to the reference subject
// (pxekit / peer when higherIsBetter, peer / pxekit otherwise, so a ratio
// above 1 always means pxekit did better).
func (e *env) table(title, reference string, higherIsBetter bool, rows []row) {
	var ref float64
	for _, r := range rows {
		if r.subject == reference {
			ref = r.value
		}
	}
	fmt.Fprintf(e.out, "-- %s\n", title)
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "subject\tmedian\tunit\tpxekit advantage\tnote")
	for _, r := range rows {
		ratio := "-"
		if r.subject != reference && r.value > 0 && ref > 0 {
			if higherIsBetter {
				ratio = fmt.Sprintf("%.2fx", ref/r.value)
			} else {
				ratio = fmt.Sprintf("%.2fx", r.value/ref)
			}
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\t%s\n", r.subject, r.value, r.unit, ratio, r.note)
	}
	tw.Flush()
}
