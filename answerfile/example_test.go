package answerfile_test

import (
	"errors"
	"fmt"
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

func ExampleParseKickstart() {
	ks, err := answerfile.ParseKickstart([]byte(`network --bootproto=dhcp --device=eth0
mystery --flag
%include /tmp/disk.ks
%post --log=/root/post.log
echo done
%end
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	dev, _ := ks.Commands("network")[0].Option("device")
	fmt.Println(dev)
	fmt.Println(ks.Warnings)
	fmt.Print(string(ks.Format()))
	// Output:
	// eth0
	// [line 2: unknown command "mystery" kept verbatim]
	// network --bootproto=dhcp --device=eth0
	// mystery --flag
	// %include /tmp/disk.ks
	// %post --log=/root/post.log
	// echo done
	// %end
}
