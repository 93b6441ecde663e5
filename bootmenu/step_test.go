package bootmenu_test

import (
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/bootmenu"
)

func TestStepOf(t *testing.T) {
	media := fstest.MapFS{
		"EFI/BOOT/BOOTX64.EFI": {Data: []byte("shim")},
		"EFI/BOOT/grubx64.efi": {Data: []byte("grub")},
	}
	loaders, err := bootmenu.FindLoaders(bootmenu.LoaderSource{FS: media, Vendor: true}, t.TempDir())
	require.NoError(t, err)
	entry, err := bootmenu.InstallEntry("rocky-9.0", "profiles/r9/boot", bootmenu.InstallInput{AnswerURL: "http://10.0.0.1/ks.cfg"})
	require.NoError(t, err)
	require.NotEmpty(t, entry.Initrds)

	for _, tc := range []struct {
		name    string
		loaders *bootmenu.Loaders
		want    bootmenu.Step
		ok      bool
	}{
		{"grub.cfg", loaders, bootmenu.StepMenu, true},
		{"grub/grub.cfg-01-52-54-00-12-34-56", loaders, bootmenu.StepMenu, true},
		{"pxelinux.cfg/default", loaders, bootmenu.StepMenu, true},
		{"hosts/52-54-00-12-34-56/boot.ipxe", loaders, bootmenu.StepMenu, true},
		{entry.Kernel, loaders, bootmenu.StepKernel, true},
		{entry.Initrds[0], loaders, bootmenu.StepInitrd, true},
		{bootmenu.LoaderShim, loaders, bootmenu.StepBootloader, true},
		{bootmenu.LoaderGRUB, loaders, bootmenu.StepBootloader, true},
		{bootmenu.LoaderShim, nil, "", false},                              // no loaders: not one of them
		{bootmenu.LoaderPXELinux, loaders, "", false},                      // a loader name these loaders do not serve
		{"profiles/r9/iso/BaseOS/repodata/repomd.xml", loaders, "", false}, // the install tree
		{"vmlinuz", loaders, "", false},                                    // a kernel of no entry
		{"", loaders, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := bootmenu.StepOf(tc.name, tc.loaders, entry, bootmenu.LocalEntry())
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

// A boot server logs its clients' progress by the files they fetch: the
// loader, the menu, then the installer's kernel and initrd.
func ExampleStepOf() {
	entry, err := bootmenu.InstallEntry("debian-12", "boot", bootmenu.InstallInput{AnswerURL: "http://10.0.0.1:8080/answer/preseed.cfg"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range []string{"grub/grub.cfg", entry.Kernel, entry.Initrds[0], "iso/dists/bookworm/Release"} {
		step, ok := bootmenu.StepOf(name, nil, entry)
		fmt.Printf("%s: %q %v\n", name, step, ok)
	}
	// Output:
	// grub/grub.cfg: "menu" true
	// boot/debian-installer/amd64/linux: "kernel" true
	// boot/debian-installer/amd64/initrd.gz: "initrd" true
	// iso/dists/bookworm/Release: "" false
}
