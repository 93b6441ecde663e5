package dhcpsrv_test

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"testing/fstest"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxekit/pxekit/dhcpsrv"
)

// Deciding what a client boots is a pure function of its request.
func ExampleClassify() {
	req, _ := dhcpv4.NewDiscovery(nil)
	req.ClientHWAddr = []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	req.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016"))

	c, err := dhcpsrv.Classify(req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.MAC, c.Arch, c.PXE, c.IPXE)

	table := dhcpsrv.BootTable{
		ServerIP: netip.MustParseAddr("10.77.0.1"),
		Files:    fstest.MapFS{"shimx64.efi": {}},
	}
	ans, _ := table.Decide(c)
	fmt.Println(ans.ServerIP, ans.File)
	// Output:
	// 52:54:00:12:34:56 EFI x86-64 true false
	// 10.77.0.1 shimx64.efi
}

// iPXE gets a script URL instead of another iPXE binary, so it cannot loop.
func ExampleBootTable_Decide_iPXE() {
	table := dhcpsrv.BootTable{ServerIP: netip.MustParseAddr("10.77.0.1"), HTTPBase: "http://10.77.0.1:8080"}
	ans, _ := table.Decide(dhcpsrv.Client{PXE: true, IPXE: true, Arch: dhcpsrv.ArchBIOS})
	fmt.Println(ans.File)
	// Output: http://10.77.0.1:8080/boot.ipxe
}

// In proxy mode another DHCP server gives the addresses. GRUB would take
// its TFTP server from that server's ACK, which names none, so x86-64 UEFI
// PXE clients chainload iPXE, which understands proxyDHCP and then asks
// again as iPXE for its script; BIOS clients get pxelinux as usual.
func ExampleBootTable_proxy() {
	table := &dhcpsrv.BootTable{
		HTTPBase: "http://10.77.0.1:8080",
		Files:    fstest.MapFS{"ipxe/snponly.efi": {}, "shimx64.efi": {}, "pxelinux.0": {}},
	}
	for _, c := range []dhcpsrv.Client{
		{PXE: true, Arch: dhcpsrv.ArchEFIX64, Proxy: true},
		{PXE: true, IPXE: true, Arch: dhcpsrv.ArchEFIX64, Proxy: true},
		{PXE: true, Arch: dhcpsrv.ArchBIOS, Proxy: true},
		{PXE: true, Arch: dhcpsrv.ArchEFIX64}, // full mode: shim keeps Secure Boot
	} {
		ans, _ := table.Decide(c)
		fmt.Println(ans.File)
	}
	// Output:
	// ipxe/snponly.efi
	// http://10.77.0.1:8080/boot.ipxe
	// pxelinux.0
	// shimx64.efi
}

// Bindings learns addresses from DHCP events, so that a TFTP or HTTP
// request, which carries only the client's address, can be tied to a
// machine.
func ExampleBindings() {
	var b dhcpsrv.Bindings
	b.Neighbors = func() ([]byte, error) { // the kernel's table; here a fixed one
		return []byte("IP address HW type Flags HW address Mask Device\n" +
			"10.77.0.9 0x1 0x2 52:54:00:00:00:09 * pxe0\n"), nil
	}
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	b.Observe(dhcpsrv.Event{Type: dhcpsrv.EventAck, IP: netip.MustParseAddr("10.77.0.150"),
		Client: dhcpsrv.Client{MAC: mac}})

	got, ok := b.MAC(netip.MustParseAddr("10.77.0.150"))
	fmt.Println(got, ok)
	got, ok = b.MAC(netip.MustParseAddr("10.77.0.9")) // not bound by DHCP: neighbour table
	fmt.Println(got, ok)
	_, ok = b.MAC(netip.MustParseAddr("10.77.0.10"))
	fmt.Println(ok)
	// Output:
	// 52:54:00:12:34:56 true
	// 52:54:00:00:00:09 true
	// false
}

// Mapping the example flags (-iface, -dhcp, -pool, -lease-file, -server-ip)
// onto a Config. Serve and Shutdown then work like net/http's.
func ExampleNew() {
	var hosts dhcpsrv.Bindings
	cfg := dhcpsrv.Config{
		Interface: "pxe-example0",                   // -iface
		Mode:      dhcpsrv.ModeFull,                 // -dhcp; New rejects other values than the Mode constants
		ServerIP:  netip.MustParseAddr("10.77.0.1"), // -server-ip; zero: the interface's address
		LeaseFile: "/var/lib/pxekit/leases",         // -lease-file
		Boot:      &dhcpsrv.BootTable{HTTPBase: "http://10.77.0.1:8080"},
		OnEvent: func(e dhcpsrv.Event) {
			hosts.Observe(e)
			log.Printf("stage=dhcp mac=%s type=%s ip=%s file=%s", e.Client.MAC, e.Type, e.IP, e.BootFile)
		},
	}
	// -pool: the subnet comes from the interface's own address.
	sub, err := dhcpsrv.SubnetFromInterface(cfg.Interface, "10.77.0.100-10.77.0.199")
	if err != nil {
		fmt.Println("no such interface here")
		return
	}
	cfg.Subnet = sub
	srv, err := dhcpsrv.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	_ = srv // go srv.Serve(ctx); ... srv.Shutdown(ctx)
	// Output: no such interface here
}
