package dhcpsrv_test

import (
	"fmt"
	"log"
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

// Mapping the example flags (-iface, -dhcp, -pool, -lease-file, -server-ip)
// onto a Config. Serve and Shutdown then work like net/http's.
func ExampleNew() {
	mode, err := dhcpsrv.ParseMode("full") // -dhcp
	if err != nil {
		log.Fatal(err)
	}
	cfg := dhcpsrv.Config{
		Interface: "pxe-example0", // -iface
		Mode:      mode,
		ServerIP:  netip.MustParseAddr("10.77.0.1"), // -server-ip; zero: the interface's address
		LeaseFile: "/var/lib/pxekit/leases",         // -lease-file
		HTTPBase:  "http://10.77.0.1:8080",
		OnEvent: func(e dhcpsrv.Event) {
			log.Printf("stage=dhcp mac=%s type=%s ip=%s file=%s", e.MAC, e.Type, e.IP, e.BootFile)
		},
	}
	if mode == dhcpsrv.ModeFull {
		// -pool: the subnet comes from the interface's own address.
		sub, err := dhcpsrv.SubnetFromInterface(cfg.Interface, "10.77.0.100-10.77.0.199")
		if err != nil {
			fmt.Println("no such interface here")
			return
		}
		cfg.Subnet = sub
	}
	srv, err := dhcpsrv.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	_ = srv // go srv.Serve(ctx); ... srv.Shutdown(ctx)
	// Output: no such interface here
}
