package vmtest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// VMConfig describes the client machine. The zero value boots OVMF over PXE
// with a virtio NIC and 1 GiB of RAM.
type VMConfig struct {
	// Name prefixes the VM's files in the lab's OutDir (default "vm":
	// vm-serial.log, vm-qemu.log, vm-timeline.txt, ...). Give VMs in one
	// lab different names.
	Name string
	// Firmware is UEFI (default), UEFISecureBoot or BIOS.
	Firmware Firmware
	// HTTPBoot makes OVMF boot over UEFI HTTP boot instead of PXE (its PXE
	// boot options are disabled). UEFI firmwares only.
	HTTPBoot bool
	// NIC is the QEMU device model: virtio (default), e1000, e1000e,
	// rtl8139 or vmxnet3. Under UEFI, virtio uses OVMF's own driver and
	// network stack; other models need the iPXE EFI ROM, so iPXE does
	// DHCP. Under BIOS every model gets QEMU's default iPXE ROM.
	NIC string
	// MAC of the NIC (default 52:54:00:12:34:56).
	MAC string
	// UUID is the SMBIOS system UUID, which firmware sends as DHCP
	// option 97 (default derived from the MAC).
	UUID string
	// MemoryMB is the guest RAM (default 1024; Debian's installer needs
	// about 1 GiB).
	MemoryMB int
	// CPUs is the number of vCPUs (default 1: under TCG each vCPU costs a
	// host core, and boot to the installer is mostly single-threaded).
	CPUs int
	// Accel is "tcg" or "kvm". Default: $PXEKIT_VM_ACCEL, else tcg. KVM
	// is opt-in because nested hosts often expose /dev/kvm yet crash OVMF
	// and the iPXE ROM under it.
	Accel string
	// DiskMB, when not 0, attaches an empty sparse raw disk of that size
	// (virtio, boot index 2, after the NIC) for tests that install and
	// then boot from disk. It lives in a private directory and is deleted
	// by Close.
	DiskMB int
	// Disk, when not empty, attaches this existing raw disk image instead
	// (virtio, boot index 2, after the NIC), for example an
	// [InstalledDisk]. The VM writes to it. Exclusive with DiskMB.
	Disk string
	// ExtraArgs are appended to the QEMU command line.
	ExtraArgs []string
	// Milestones adds serial-console patterns to the timeline, by name,
	// on top of the defaults (see [VM.Timeline]).
	Milestones map[string]*regexp.Regexp
}

// Milestone is a moment of the boot, measured from QEMU's start.
type Milestone struct {
	Name string
	At   time.Duration
	// Line is the log line that matched (empty for [VM.Mark]).
	Line string
}

// defaultMilestones are recognisable on the serial console for every
// firmware: OVMF and iPXE report network boot and the boot file name, GRUB
// and PXELINUX print their banners (SeaBIOS mirrors the text screen to serial), the kernel and the
// Debian installer log their start.
func defaultMilestones() []watch {
	return []watch{
		{name: "firmware-net", re: regexp.MustCompile(`Start PXE over IPv4|Start HTTP Boot over IPv4|iPXE initialising|net0: [0-9a-f]{2}:`)},
		{name: "nbp", re: regexp.MustCompile(`NBP filename is|Filename: \S`)},
		{name: "grub", re: regexp.MustCompile(`GNU GRUB`)},
		{name: "pxelinux", re: regexp.MustCompile(`PXELINUX [0-9]`)},
		{name: "kernel", re: regexp.MustCompile(`Linux version [0-9]`)},
		{name: "secureboot", re: regexp.MustCompile(`secureboot: Secure boot enabled`)},
		{name: "init", re: regexp.MustCompile(`Run /init as init process`)},
		{name: "installer-dhcp", re: regexp.MustCompile(`Configuring the network with DHCP|udhcpc: started`)},
	}
}

type watch struct {
	name string
	path string // empty: the serial log
	re   *regexp.Regexp
}

// VM is a running QEMU. Create it with [Lab.Boot].
type VM struct {
	cfg     VMConfig
	lab     *Lab
	run     string // private runtime dir: QMP socket, vars copy
	serial  string
	qemuLog string
	cmd     *exec.Cmd
	start   time.Time
	done    chan struct{}
	err     error // valid after done
	stopW   chan struct{}
	wdone   chan struct{}
	qmpMu   sync.Mutex
	mu      sync.Mutex
	watches []watch
	seen    map[string]Milestone
	closed  bool
}

// Boot starts QEMU attached to the lab's tap and registers Close with
// t.Cleanup (VMs close before their lab). Missing firmware for the chosen
// variant skips the test; other setup errors fail it.
func (l *Lab) Boot(t testing.TB, cfg VMConfig) *VM {
	t.Helper()
	if cfg.Firmware == "" {
		cfg.Firmware = UEFI
	}
	if _, err := firmwareFor(cfg.Firmware); err != nil {
		t.Skip(err)
	}
	vm, err := l.boot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.track(t, vm, true, vm.describe())
	return vm
}

// track registers vm's Close with t.Cleanup and logs what it boots. With
// screen, a failed test first saves the VM's screen next to its logs; ARM64
// VMs have no display to save.
func (l *Lab) track(t testing.TB, vm *VM, screen bool, what string) {
	t.Helper()
	t.Cleanup(func() {
		if screen && t.Failed() && vm.Running() {
			shot := filepath.Join(l.out, vm.cfg.Name+"-final.png")
			if err := vm.Screenshot(shot); err == nil {
				t.Logf("vmtest: screen at failure saved to %s", shot)
			}
		}
		if err := vm.Close(); err != nil {
			t.Error(err)
		}
		t.Logf("vmtest: %s timeline (seconds since QEMU start):\n%s", vm.cfg.Name, vm.TimelineString())
	})
	t.Logf("vmtest: %s booting %s (%s NIC, MAC %s, accel %s)", vm.cfg.Name, what, vm.cfg.NIC, vm.cfg.MAC, vm.cfg.Accel)
}

func (vm *VM) describe() string {
	if vm.cfg.HTTPBoot {
		return string(vm.cfg.Firmware) + " HTTP boot"
	}
	return string(vm.cfg.Firmware) + " PXE"
}

func (l *Lab) boot(cfg VMConfig) (*VM, error) {
	if err := fillVMConfig(&cfg); err != nil {
		return nil, err
	}
	fw, err := firmwareFor(cfg.Firmware)
	if err != nil {
		return nil, err
	}
	return l.startVM(cfg, "qemu-system-x86_64", func(vm *VM) ([]string, error) { return vm.qemuArgs(fw) })
}

// startVM makes the VM for a filled-in cfg with its private runtime directory,
// asks args for QEMU's command line (args may write files into vm.run) and
// starts bin. On error nothing is left behind.
func (l *Lab) startVM(cfg VMConfig, bin string, args func(*VM) ([]string, error)) (*VM, error) {
	// Unix socket paths are limited to 108 bytes; keep them out of OutDir.
	run, err := os.MkdirTemp("", "pxekit-vm-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: runtime directory: %w", err)
	}
	vm := &VM{
		cfg:     cfg,
		lab:     l,
		run:     run,
		serial:  filepath.Join(l.out, cfg.Name+"-serial.log"),
		qemuLog: filepath.Join(l.out, cfg.Name+"-qemu.log"),
		done:    make(chan struct{}),
		stopW:   make(chan struct{}),
		wdone:   make(chan struct{}),
		seen:    map[string]Milestone{},
		watches: defaultMilestones(),
	}
	names := make([]string, 0, len(cfg.Milestones))
	for n := range cfg.Milestones {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		vm.watches = append(vm.watches, watch{name: n, re: cfg.Milestones[n]})
	}
	a, err := args(vm)
	if err == nil {
		err = l.startQEMU(vm, bin, a)
	}
	if err != nil {
		_ = os.RemoveAll(run)
		return nil, err
	}
	return vm, nil
}

// startQEMU runs bin with args inside the namespace for vm, writing the
// command line next to its logs, and starts the milestone watcher.
func (l *Lab) startQEMU(vm *VM, bin string, args []string) error {
	_ = os.WriteFile(filepath.Join(l.out, vm.cfg.Name+"-qemu-cmdline.txt"), []byte(bin+" "+strings.Join(args, " ")+"\n"), 0o644)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("vmtest: lab is closed")
	}
	logf, err := os.Create(vm.qemuLog)
	if err != nil {
		return fmt.Errorf("vmtest: QEMU log: %w", err)
	}
	defer logf.Close()
	_ = os.Remove(vm.serial)
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.name, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vmtest: start QEMU: %w", err)
	}
	vm.cmd = cmd
	vm.start = time.Now()
	go func() {
		vm.err = cmd.Wait()
		close(vm.done)
	}()
	go vm.watchMilestones()
	return nil
}

func fillVMConfig(cfg *VMConfig) error {
	if cfg.Name == "" {
		cfg.Name = "vm"
	}
	cfg.Name = sanitize(cfg.Name)
	if cfg.Firmware == "" {
		cfg.Firmware = UEFI
	}
	if cfg.HTTPBoot && cfg.Firmware == BIOS {
		return errors.New("vmtest: HTTPBoot needs UEFI firmware")
	}
	if cfg.NIC == "" {
		cfg.NIC = "virtio"
	}
	if cfg.MAC == "" {
		cfg.MAC = "52:54:00:12:34:56"
	}
	hw, err := net.ParseMAC(cfg.MAC)
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("vmtest: bad MAC %q", cfg.MAC)
	}
	cfg.MAC = hw.String()
	if cfg.UUID == "" {
		h := sha256.Sum256(hw)
		cfg.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], []byte(hw))
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.DiskMB > 0 && cfg.Disk != "" {
		return errTwoDisks
	}
	if cfg.Disk != "" {
		abs, err := filepath.Abs(cfg.Disk)
		if err != nil {
			return fmt.Errorf("vmtest: disk %s: %w", cfg.Disk, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("vmtest: disk: %w", err)
		}
		cfg.Disk = abs
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.Accel == "" {
		cfg.Accel = os.Getenv("PXEKIT_VM_ACCEL")
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	if cfg.Accel != "tcg" && cfg.Accel != "kvm" {
		return fmt.Errorf("vmtest: accelerator %q: want tcg or kvm", cfg.Accel)
	}
	return nil
}

// nicModels maps the NIC names to QEMU devices.
func nicDevice(model string) (string, error) {
	switch model {
	case "virtio":
		return "virtio-net-pci", nil
	case "e1000", "e1000e", "rtl8139", "vmxnet3":
		return model, nil
	}
	return "", fmt.Errorf("vmtest: unknown NIC model %q (want virtio, e1000, e1000e, rtl8139 or vmxnet3)", model)
}

func (vm *VM) qemuArgs(fw firmwareFiles) ([]string, error) {
	cfg := vm.cfg
	dev, err := nicDevice(cfg.NIC)
	if err != nil {
		return nil, err
	}
	machine := "q35"
	if fw.secure {
		// Secure Boot OVMF keeps its variables in SMM-protected flash.
		machine += ",smm=on"
	}
	nic := fmt.Sprintf("%s,netdev=net0,mac=%s,bootindex=1", dev, cfg.MAC)
	if cfg.Firmware != BIOS && cfg.NIC == "virtio" {
		// No option ROM: OVMF's own virtio driver, PXE and HTTP boot. With
		// the iPXE ROM present, iPXE would do DHCP instead of OVMF.
		nic += ",romfile="
	}
	// Otherwise QEMU's default ROM from ipxe-qemu. Never name it with
	// romfile=: QEMU patches the PCI IDs only into its default ROM, and
	// SeaBIOS ignores an explicit virtio ROM built for another device ID.
	args := []string{
		"-name", "pxekit-" + cfg.Name,
		"-machine", machine,
		"-accel", cfg.Accel,
		"-m", fmt.Sprint(cfg.MemoryMB),
		"-smp", fmt.Sprint(cfg.CPUs),
		"-nodefaults", "-no-user-config",
		"-vga", "std", "-display", "none",
		"-uuid", cfg.UUID,
		"-netdev", "tap,id=net0,ifname=" + vm.lab.iface + ",script=no,downscript=no",
		"-device", nic,
		"-chardev", "file,id=ser0,path=" + vm.serial,
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + vm.qmpPath() + ",server=on,wait=off",
		"-monitor", "none",
	}
	switch cfg.Firmware {
	case BIOS:
		// SeaBIOS "sercon": mirror the text screen (iPXE, PXELINUX) to
		// the serial port at 0x3f8, given as a little-endian integer.
		port := filepath.Join(vm.run, "sercon-port")
		if err := os.WriteFile(port, []byte{0xf8, 0x03, 0, 0, 0, 0, 0, 0}, 0o644); err != nil {
			return nil, fmt.Errorf("vmtest: %w", err)
		}
		args = append(args, "-fw_cfg", "name=etc/sercon-port,file="+port, "-boot", "strict=on")
	default:
		vars := filepath.Join(vm.run, "OVMF_VARS.fd")
		if err := copyFile(fw.vars, vars); err != nil {
			return nil, fmt.Errorf("vmtest: writable copy of %s: %w", fw.vars, err)
		}
		if fw.secure {
			args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+fw.code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
		if cfg.HTTPBoot {
			// OVMF makes PXE and HTTP boot options per NIC; with PXE
			// switched off only HTTP boot remains.
			args = append(args,
				"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
				"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
		}
	}
	disk := cfg.Disk
	if cfg.DiskMB > 0 {
		disk = filepath.Join(vm.run, "disk.raw")
		f, err := os.Create(disk)
		if err != nil {
			return nil, fmt.Errorf("vmtest: disk: %w", err)
		}
		err = f.Truncate(int64(cfg.DiskMB) << 20)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("vmtest: disk: %w", err)
		}
	}
	if disk != "" {
		args = append(args,
			"-drive", "if=none,id=disk0,format=raw,file="+strings.ReplaceAll(disk, ",", ",,"),
			"-device", "virtio-blk-pci,drive=disk0,bootindex=2")
	}
	return append(args, cfg.ExtraArgs...), nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o600)
}

func (vm *VM) qmpPath() string { return filepath.Join(vm.run, "qmp.sock") }

// SerialPath is the file receiving the VM's serial console.
func (vm *VM) SerialPath() string { return vm.serial }

// MAC is the NIC's MAC address in canonical lower-case form.
func (vm *VM) MAC() string { return vm.cfg.MAC }

// Running reports whether QEMU is still running.
func (vm *VM) Running() bool {
	select {
	case <-vm.done:
		return false
	default:
		return true
	}
}

func (vm *VM) gone() error {
	select {
	case <-vm.done:
		return fmt.Errorf("QEMU %w (%v); see %s", errExited, vm.err, vm.qemuLog)
	default:
		return nil
	}
}

// WaitSerial waits until re matches the serial console log and returns the
// matching line; it fails early when QEMU exits.
func (vm *VM) WaitSerial(ctx context.Context, re *regexp.Regexp) (string, error) {
	return waitFile(ctx, vm.serial, re, vm.gone)
}

// Watch adds a milestone to the timeline: the first time re matches the
// file at path (for example a server's [Proc.LogPath]). Polling the file
// gives the time the line was written, not the time a test looked.
func (vm *VM) Watch(name, path string, re *regexp.Regexp) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.watches = append(vm.watches, watch{name: name, path: path, re: re})
}

// Mark records a milestone now and returns the time since QEMU started.
// A name already recorded keeps its first time.
func (vm *VM) Mark(name string) time.Duration {
	d := time.Since(vm.start)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if m, ok := vm.seen[name]; ok {
		return m.At
	}
	vm.seen[name] = Milestone{Name: name, At: d}
	return d
}

// Elapsed is the time since QEMU started.
func (vm *VM) Elapsed() time.Duration { return time.Since(vm.start) }

// Timeline returns the milestones reached so far, in order. The defaults
// are firmware-net (OVMF/iPXE network boot started), nbp (boot file name
// received), grub, pxelinux, kernel, secureboot (the kernel reports Secure
// Boot enforced), init and installer-dhcp; [VMConfig.Milestones], [VM.Watch] and
// [VM.Mark] add more.
func (vm *VM) Timeline() []Milestone {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	ms := make([]Milestone, 0, len(vm.seen))
	for _, m := range vm.seen {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].At < ms[j].At })
	return ms
}

// TimelineString formats the timeline one milestone per line.
func (vm *VM) TimelineString() string {
	var b strings.Builder
	for _, m := range vm.Timeline() {
		fmt.Fprintf(&b, "%8.1fs  %s\n", m.At.Seconds(), m.Name)
	}
	return b.String()
}

// watchMilestones polls the watched files until Close and records the
// first match of every milestone.
func (vm *VM) watchMilestones() {
	defer close(vm.wdone)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		vm.checkMilestones()
		select {
		case <-vm.stopW:
			vm.checkMilestones()
			return
		case <-tick.C:
		}
	}
}

func (vm *VM) checkMilestones() {
	vm.mu.Lock()
	var todo []watch
	for _, w := range vm.watches {
		if _, ok := vm.seen[w.name]; !ok {
			todo = append(todo, w)
		}
	}
	vm.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	at := time.Since(vm.start)
	cache := map[string][]byte{}
	for _, w := range todo {
		path := w.path
		if path == "" {
			path = vm.serial
		}
		data, ok := cache[path]
		if !ok {
			data, _ = os.ReadFile(path)
			cache[path] = data
		}
		if loc := w.re.FindIndex(data); loc != nil {
			line, _ := matchFile(path, w.re)
			vm.mu.Lock()
			if _, dup := vm.seen[w.name]; !dup {
				vm.seen[w.name] = Milestone{Name: w.name, At: at, Line: strings.TrimSpace(stripANSI(line))}
			}
			vm.mu.Unlock()
		}
	}
}

// Screenshot saves the VGA screen as a PNG file (QMP screendump).
func (vm *VM) Screenshot(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = vm.qmp(ctx, "screendump", map[string]any{"filename": abs, "format": "png"})
	return err
}

// Reboot resets the machine like the reset button (QMP system_reset); the
// firmware starts again with the same NVRAM, so UEFI boot entries an
// installer wrote survive. The timeline keeps counting from the first start.
func (vm *VM) Reboot() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := vm.qmp(ctx, "system_reset", nil)
	return err
}

// Close stops QEMU (SIGTERM, then SIGKILL), writes <name>-timeline.txt and
// removes the runtime directory. It is safe to call more than once.
func (vm *VM) Close() error {
	vm.mu.Lock()
	if vm.closed {
		vm.mu.Unlock()
		return nil
	}
	vm.closed = true
	vm.mu.Unlock()
	err := stopGroup(vm.cmd.Process.Pid, vm.done, 3*time.Second)
	close(vm.stopW)
	<-vm.wdone
	_ = os.WriteFile(filepath.Join(vm.lab.out, vm.cfg.Name+"-timeline.txt"), []byte(vm.TimelineString()), 0o644)
	_ = os.RemoveAll(vm.run)
	return err
}
