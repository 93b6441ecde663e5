package kickstart_test

import (
	"fmt"

	"github.com/pxekit/pxekit/answerfile/kickstart"
)

func ExampleParse() {
	ks, err := kickstart.Parse([]byte(`network --bootproto=dhcp --device=eth0
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
