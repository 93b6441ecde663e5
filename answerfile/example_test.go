package answerfile_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pxekit/pxekit/answerfile"
)

func ExampleRender() {
	spec, err := answerfile.ParseSpec([]byte(`
hostname: web01
timezone: Asia/Shanghai
root:
  password: {hash: "$6$pxekitdemosalt$CNbX.5VZ2sQgrl7tHPEy5LpP2PyybeVzbbxJPiJmJwDG4rqTfBTck6uEbCUCLHkAVnf.F5qblFG3h2Fg4ha4t1"}
disk: {device: sda, wipe: true}
layout: {scheme: lvm}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ks, err := answerfile.Render("rocky-9.0", answerfile.KindKickstart, spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, line := range strings.Split(string(ks), "\n") {
		if strings.HasPrefix(line, "part ") || strings.HasPrefix(line, "logvol ") || strings.HasPrefix(line, "volgroup ") {
			fmt.Println(line)
		}
	}
	fmt.Println("smallest disk:", spec.MinDiskMiB(), "MiB")
	// Output:
	// part biosboot --fstype=biosboot --size=1
	// part /boot/efi --fstype=efi --size=512
	// part /boot --fstype=xfs --size=1024
	// part pv.01 --size=1 --grow
	// volgroup vg0 pv.01
	// logvol swap --vgname=vg0 --name=swap --fstype=swap --size=1024
	// logvol / --vgname=vg0 --name=root --fstype=xfs --size=5120 --grow
	// smallest disk: 7691 MiB
}

func ExampleBuild() {
	spec := answerfile.DemoSpec(answerfile.SchemePlain)
	spec.Hostname = "web01.lab.example"
	spec.Network = answerfile.Network{Mode: "static", Device: "eno1", Address: "192.0.2.10/24",
		Gateway: "192.0.2.1", DNS: []string{"192.0.2.53"}}
	set, err := answerfile.Build("ubuntu-24.04", spec, "http://192.0.2.1:8080/answer/")
	if err != nil {
		fmt.Println(err)
		return
	}
	names := make([]string, 0, len(set.Files))
	for name := range set.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Println(set.Kind, names)
	fmt.Println("kernel line names:", set.URL)
	in := set.Installer
	fmt.Println(in.Hostname, in.Domain, in.Address, in.Gateway, in.Nameservers, in.Interface)
	// Output:
	// autoinstall [seed/meta-data seed/user-data]
	// kernel line names: http://192.0.2.1:8080/answer/seed/
	// web01 lab.example 192.0.2.10/24 192.0.2.1 [192.0.2.53] eno1
}

func ExampleSpec_RequireCredentials() {
	spec := &answerfile.Spec{Hostname: "lab01"}
	_, err := spec.RequireCredentials(false)
	fmt.Println(errors.Is(err, answerfile.ErrNoCredentials))
	demo, err := spec.RequireCredentials(true)
	fmt.Println(demo, err)
	// Output:
	// true
	// [root ops] <nil>
}

func ExampleSpec_Validate() {
	spec := answerfile.DemoSpec(answerfile.SchemeLVM)
	spec.Layout.LVM.Volumes = []answerfile.Volume{
		{Mount: "swap", Size: 4096},
		{Mount: "/", Size: 8192},
		{Mount: "/data", Size: -1},
	}
	err := spec.Validate()
	fmt.Println(errors.Is(err, answerfile.ErrInvalidSpec))
	fmt.Println(err)
	// Output:
	// true
	// answerfile: invalid spec: layout.lvm.volumes[2].size: must be > 0
}

func ExampleDemoSpec() {
	out, err := answerfile.Render("debian-12", answerfile.KindPreseed, answerfile.DemoSpec(answerfile.SchemePlain))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Contains(string(out), "DEMO password"))
	// Output: true
}

func ExampleHashPassword() {
	hash, err := answerfile.HashPassword("s3cret", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := answerfile.SHA512Crypt("s3cret", hash)
	fmt.Println(strings.HasPrefix(hash, "$6$"), again == hash)
	// Output: true true
}
