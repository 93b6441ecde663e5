package main

import (
	"encoding/json"
	"net"
	"net/netip"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/internal/simclient"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc shows it.
	line := "4242 (in.tftpd (x)) S 1 4242 4242 0 -1 4194560 120 0 0 0 17 5 31 7 20 0 1 0 1234 5000000 300 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseProcStat([]byte(line))
	require.NoError(t, err)
	assert.Equal(t, procStat{utime: 17, stime: 5, cutime: 31, cstime: 7}, st)
	assert.Equal(t, 600*time.Millisecond, st.cpu())

	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 ab 5 3 1 0\n", "12 (x) S 1 2 3 4 5 6 7 8 9 10 -1 5 3 1 0\n"} {
		_, err := parseProcStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseProcStatus(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    5432 kB\nThreads:\t1\n"
	hwm, rss := parseProcStatus([]byte(status))
	assert.Equal(t, int64(9876<<10), hwm)
	assert.Equal(t, int64(5432<<10), rss)
	hwm, rss = parseProcStatus([]byte("Name:\tkthreadd\nVmHWM:\tjunk kB\n"))
	assert.Zero(t, hwm)
	assert.Zero(t, rss)
}

func TestListensOn(t *testing.T) {
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  563: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 91 2 0 0
  565: 0100E80A:0045 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 92 2 0 0
`
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100E80A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 93 1 0 100 0 0 10 0
   1: 0100E80A:1F90 0200E80A:C350 01 00000000:00000000 00:00000000 00000000     0        0 94 1 0 20 4 30 10 -1
`
	assert.True(t, listensOn([]byte(udp), 67, false))
	assert.True(t, listensOn([]byte(udp), 69, false))
	assert.False(t, listensOn([]byte(udp), 80, false))
	assert.True(t, listensOn([]byte(tcp), 80, true))
	assert.False(t, listensOn([]byte(tcp), 8080, true), "an established connection is no listener")
	assert.False(t, listensOn(nil, 67, false))
}

func TestCgroupFiles(t *testing.T) {
	p, err := cgroupV2Path([]byte("4:memory:/x\n0::/user.slice/bench\n"))
	require.NoError(t, err)
	assert.Equal(t, "/user.slice/bench", p)
	_, err = cgroupV2Path([]byte("4:memory:/x\n"))
	assert.Error(t, err)

	d, err := parseCPUStat([]byte("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n"))
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, d)
	for _, bad := range []string{"", "user_usec 5\n", "usage_usec -3\n", "usage_usec x\n"} {
		_, err := parseCPUStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestPercentileAndSizes(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	assert.Equal(t, 10.0, percentile(xs, 95))
	assert.Equal(t, 5.0, percentile(xs, 50))
	assert.Equal(t, 1.0, percentile(xs, 1))
	assert.Equal(t, 0.0, percentile(nil, 95))
	assert.Equal(t, []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}, xs, "input left unsorted")

	got, err := parseSizes("1, 50,200", 500)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 50, 200}, got)
	for _, bad := range []string{"", "0", "1,x", "501"} {
		_, err := parseSizes(bad, 500)
		assert.Error(t, err, "%q", bad)
	}
}

// TestClassicMenu checks that the classic grub.cfg leads the simulated
// client where the classic job expects: kernel and initrd by bare path
// (TFTP), the host's own preseed on nginx's port 80.
func TestClassicMenu(t *testing.T) {
	kernel, initrds, answer, err := parseGRUBMenu(string(classicGRUBConfig(benchSrvIP)))
	require.NoError(t, err)
	assert.Equal(t, "/debian-installer/amd64/linux", kernel)
	assert.Equal(t, []string{"/debian-installer/amd64/initrd.gz"}, initrds)
	mac := net.HardwareAddr{2, 0xfe, 0, 0, 0, 7}
	answer = simclient.ExpandGRUBVars(answer, map[string]string{"net_default_mac": mac.String()})

	job := &fleetJob{HTTPPort: 80, AnswerPath: "/hosts/{mac}/preseed.cfg", Answer: "preseed.cfg"}
	c := &fleetClient{job: job, server: netip.MustParseAddr(benchSrvIP)}
	assert.Equal(t, "http://10.232.0.1/hosts/02:fe:00:00:00:07/preseed.cfg", answer)
	assert.True(t, strings.HasPrefix(answer, "http://"+c.httpHost()+"/"))
	ok, err := path.Match(job.answerPattern(mac), "/hosts/02:fe:00:00:00:07/preseed.cfg")
	require.NoError(t, err)
	assert.True(t, ok)
	_, name, err := c.menuURL(kernel)
	require.NoError(t, err)
	assert.Equal(t, "debian-installer/amd64/linux", name, "the key of the classic job's sums")

	// fleet's defaults: port 8080, hosts/MAC-WITH-DASHES/TOKEN/ANSWER.
	fj := &fleetJob{Answer: "preseed.cfg"}
	assert.Equal(t, "10.232.0.1:8080", fj.httpHost(netip.MustParseAddr(benchSrvIP)))
	ok, _ = path.Match(fj.answerPattern(mac), "/hosts/02-fe-00-00-00-07/Zm9v/preseed.cfg")
	assert.True(t, ok)
	ok, _ = path.Match(fj.answerPattern(mac), "/hosts/02-fe-00-00-00-07/preseed.cfg")
	assert.False(t, ok, "fleet's answer files carry a token")
}

func TestClassicConfigs(t *testing.T) {
	conf := string(classicDHCPDConfig(benchSrvIP, fleetPool))
	for _, want := range []string{
		"range 10.232.1.1 10.232.3.254;", "next-server 10.232.0.1;", `filename "shimx64.efi";`,
		"option arch code 93 = unsigned integer 16;", "if option arch = 00:07 or option arch = 00:09 {",
	} {
		assert.Contains(t, conf, want)
	}
	assert.Equal(t, strings.Count(conf, "{"), strings.Count(conf, "}"))

	ng := string(classicNginxConfig("/tmp/x", benchSrvIP, 80))
	for _, want := range []string{"daemon off;", "sendfile on;", "listen 10.232.0.1:80;", "root /tmp/x/www;", "pid /tmp/x/nginx.pid;", "client_body_temp_path /tmp/x/nginx-temp/body;"} {
		assert.Contains(t, ng, want)
	}
	assert.Equal(t, strings.Count(ng, "{"), strings.Count(ng, "}"))

	for _, dhcp := range []string{"dhcpd", "dnsmasq"} {
		argv := classicArgv("/tmp/x", "veth0", dhcp)
		require.Len(t, argv, 3)
		assert.Equal(t, dhcp, argv[0][0])
		assert.Contains(t, strings.Join(argv[0], " "), "veth0")
		assert.Equal(t, []string{"in.tftpd", "-L", "-a", "10.232.0.1:69", "-s", "/tmp/x/tftp", "-P", "/tmp/x/tftpd.pid"}, argv[1])
		assert.Equal(t, "nginx", argv[2][0])
	}
	assert.Equal(t, "in.tftpd", daemonName([]string{"/bin/bench", "ip", "netns", "exec", "ns", "in.tftpd", "-L"}))
	assert.Equal(t, "nginx", daemonName([]string{"ip", "netns", "exec", "ns", "nginx"}))

	spec := string(classicSpec("rack-007"))
	assert.Contains(t, spec, "hostname: rack-007\n")
	assert.Contains(t, spec, fleetRootHash)
}

func TestKeaConfig(t *testing.T) {
	for _, mt := range []bool{false, true} {
		var v struct {
			Dhcp4 struct {
				MT *struct {
					Enable bool `json:"enable-multi-threading"`
					Pool   int  `json:"thread-pool-size"`
					Queue  int  `json:"packet-queue-size"`
				} `json:"multi-threading"`
				IC struct {
					Interfaces []string `json:"interfaces"`
				} `json:"interfaces-config"`
			}
		}
		require.NoError(t, json.Unmarshal(keaConfig("veth0", "/tmp/k.leases", mt), &v), "valid JSON")
		assert.Equal(t, []string{"veth0"}, v.Dhcp4.IC.Interfaces)
		if !mt {
			assert.Nil(t, v.Dhcp4.MT)
			continue
		}
		require.NotNil(t, v.Dhcp4.MT)
		assert.True(t, v.Dhcp4.MT.Enable)
		assert.Equal(t, 4, v.Dhcp4.MT.Pool)
		assert.Equal(t, 64, v.Dhcp4.MT.Queue)
	}
}

func TestDHCPPeersNames(t *testing.T) {
	// Peers whose programs are missing are left out; the names of those
	// present are distinct, so that table rows and run lines are too.
	seen := map[string]bool{}
	for _, p := range dhcpPeers("/nonexistent/bench", false) {
		assert.False(t, seen[p.name], p.name)
		seen[p.name] = true
	}
	assert.True(t, seen["pxekit"])
	assert.Len(t, dhcpPeers("/nonexistent/bench", true), 1, "proxy mode: pxekit only")
}
