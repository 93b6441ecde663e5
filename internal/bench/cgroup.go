package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A stack whose daemons fork a child per request and let the kernel reap
// them (tftpd-hpa ignores SIGCHLD) leaves no trace of those children's CPU
// in /proc. The rack suite therefore starts such daemons in a cgroup (v2) of
// their own, created below the bench's own cgroup, and reads its cpu.stat,
// which counts every task that ever ran in it. The cgroup enables no
// controller: it only counts.
const cgExecEnv = "PXEKIT_BENCH_CGEXEC" // a cgroup directory

func init() {
	dir := os.Getenv(cgExecEnv)
	if dir == "" {
		return
	}
	// This process joins the cgroup, then becomes the daemon named by
	// its arguments, so that the daemon and all it forks are counted.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("0"), 0); err != nil {
		fmt.Fprintln(os.Stderr, "cgroup:", err)
		os.Exit(1)
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "cgroup: no command")
		os.Exit(1)
	}
	bin, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgroup:", err)
		os.Exit(1)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, cgExecEnv+"=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(bin, os.Args[1:], env)
	fmt.Fprintln(os.Stderr, "cgroup: exec:", err)
	os.Exit(1)
}

// cgroupV2Path returns the cgroup v2 path of the calling process from the
// text of /proc/self/cgroup (its "0::PATH" line).
func cgroupV2Path(procSelfCgroup []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(procSelfCgroup))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok && strings.HasPrefix(p, "/") {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 entry")
}

// cgroupV2Root is where the v2 hierarchy is mounted: /sys/fs/cgroup on a
// unified system, /sys/fs/cgroup/unified on a hybrid one.
func cgroupV2Root() (string, error) {
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st syscall.Statfs_t
		if syscall.Statfs(d, &st) == nil && st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
			return d, nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy mounted")
}

// newCountingCgroup creates an empty cgroup below the bench's own, named
// after tag; remove deletes it once its processes are gone.
func newCountingCgroup(tag string) (dir string, remove func(), err error) {
	root, err := cgroupV2Root()
	if err != nil {
		return "", nil, err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", nil, err
	}
	own, err := cgroupV2Path(b)
	if err != nil {
		return "", nil, err
	}
	dir = filepath.Join(root, own, fmt.Sprintf("pxekit-bench-%d-%s", os.Getpid(), tag))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, err
	}
	return dir, func() {
		// The last processes may take a moment to leave.
		for range 50 {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}, nil
}

// parseCPUStat returns usage_usec from the text of a cgroup's cpu.stat.
func parseCPUStat(b []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || us < 0 {
				return 0, fmt.Errorf("cpu.stat: usage_usec %q", v)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, errors.New("cpu.stat: no usage_usec")
}

// cgroupCPU is the CPU every task of the cgroup dir ever used, or -1.
func cgroupCPU(dir string) time.Duration {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return -1
	}
	d, err := parseCPUStat(b)
	if err != nil {
		return -1
	}
	return d
}
