package isosrc_test

import (
	"fmt"
	"io/fs"
	"testing/fstest"

	"github.com/pxekit/pxekit/isosrc"
)

// Two profiles' trees served side by side below their own directories,
// through one Union, as a multi-OS site's TFTP side serves them.
func ExampleMount() {
	rocky := fstest.MapFS{"boot/vmlinuz": {Data: []byte("rocky kernel")}}
	debian := fstest.MapFS{"boot/linux": {Data: []byte("debian kernel")}}
	site := isosrc.Union(isosrc.Mount("profiles/rocky9/", rocky), isosrc.Mount("profiles/debian12/", debian))
	for _, name := range []string{"profiles/rocky9/boot/vmlinuz", "profiles/debian12/boot/linux", "profiles/debian12/boot/vmlinuz"} {
		data, err := fs.ReadFile(site, name)
		fmt.Printf("%s: %q %v\n", name, data, err)
	}
	// Output:
	// profiles/rocky9/boot/vmlinuz: "rocky kernel" <nil>
	// profiles/debian12/boot/linux: "debian kernel" <nil>
	// profiles/debian12/boot/vmlinuz: "" open profiles/debian12/boot/vmlinuz: file does not exist
}
