package tftpsrv

import (
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		bad       bool
	}{
		{raw: "pxelinux.0", want: "pxelinux.0"},
		{raw: "/grub/grub.cfg", want: "grub/grub.cfg"},
		{raw: "//grub//x86_64-efi/command.lst", want: "grub/x86_64-efi/command.lst"},
		{raw: `\boot\x86\wdsnbp.com`, want: "boot/x86/wdsnbp.com"},
		{raw: "./pxelinux.cfg/default", want: "pxelinux.cfg/default"},
		{raw: "bios/../images/vmlinuz", want: "images/vmlinuz"},
		{raw: "a/./b/.", want: "a/b"},
		{raw: "grub.cfg-01-52-54-00-12-34-56", want: "grub.cfg-01-52-54-00-12-34-56"},
		{raw: "日本/語.cfg", want: "日本/語.cfg"},
		{raw: "file with space", want: "file with space"},
		{raw: "..", bad: true},
		{raw: "../etc/passwd", bad: true},
		{raw: "/../etc/passwd", bad: true},
		{raw: `..\..\windows\win.ini`, bad: true},
		{raw: "a/../../b", bad: true},
		{raw: "", bad: true},
		{raw: "/", bad: true},
		{raw: "./", bad: true},
		{raw: "a/..", bad: true},
		{raw: "a\x00b", bad: true},
		{raw: "a\nb", bad: true},
		{raw: "a\x7fb", bad: true},
		{raw: "a\u0085b", bad: true},
		{raw: "\xff\xfe", bad: true},
		{raw: strings.Repeat("a", MaxNameLength), want: strings.Repeat("a", MaxNameLength)},
		{raw: strings.Repeat("a", MaxNameLength+1), bad: true},
	} {
		got, err := CleanName(tc.raw)
		if tc.bad {
			assert.ErrorIs(t, err, ErrInvalidName, "%q", tc.raw)
			assert.Empty(t, got)
			continue
		}
		if assert.NoError(t, err, "%q", tc.raw) {
			assert.Equal(t, tc.want, got, "%q", tc.raw)
		}
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"pxelinux.0", "/grub/grub.cfg", `\a\..\b`, "../x", "a//b/./c", "a\x00", "..//..", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := CleanName(raw)
		if err != nil {
			assert.ErrorIs(t, err, ErrInvalidName)
			return
		}
		assert.True(t, fs.ValidPath(got), "%q → %q", raw, got)
		assert.True(t, utf8.ValidString(got))
		assert.NotContains(t, got, `\`)
		for _, elem := range strings.Split(got, "/") {
			assert.NotEqual(t, "..", elem)
		}
		for _, r := range got {
			assert.False(t, r < 0x20 || r == 0x7f, "control character in %q", got)
		}
		again, err := CleanName(got)
		assert.NoError(t, err)
		assert.Equal(t, got, again, "CleanName must be idempotent")
	})
}
