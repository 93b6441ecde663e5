package tftpsrv

import (
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// MaxNameLength is the longest name, in bytes as sent, that the server
// accepts. Boot loaders send short relative or absolute paths; anything
// longer is hostile or broken.
const MaxNameLength = 255

// CleanName turns a file name as a TFTP client sends it into a name valid for
// io/fs, or explains why it is refused (the error wraps ErrInvalidName and is
// answered with TFTP error 2).
//
// Real clients send names in many shapes: GRUB uses absolute paths
// ("/grub/grub.cfg"), Windows boot programs use backslashes, PXELINUX joins
// its prefix so "bios/../images/vmlinuz" occurs, and some send "./" or doubled
// slashes. All of these are accepted. Refused are names that would leave the
// served tree through "..", names with NUL or other control characters,
// invalid UTF-8, names longer than MaxNameLength and names that denote no
// file (empty or the root itself).
//
// The result uses forward slashes, has no leading slash and no "." or ".."
// elements, so fs.ValidPath holds for it, and CleanName(result) == result.
func CleanName(raw string) (string, error) {
	if len(raw) > MaxNameLength {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameLength)
	}
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", fmt.Errorf("%w: contains control character %U", ErrInvalidName, r)
		}
	}
	s := strings.ReplaceAll(raw, `\`, "/")
	out := make([]string, 0, strings.Count(s, "/")+1)
	for _, elem := range strings.Split(s, "/") {
		switch elem {
		case "", ".":
		case "..":
			if len(out) == 0 {
				return "", fmt.Errorf("%w: leaves the served tree", ErrInvalidName)
			}
			out = out[:len(out)-1]
		default:
			out = append(out, elem)
		}
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%w: names no file", ErrInvalidName)
	}
	name := strings.Join(out, "/")
	if !fs.ValidPath(name) {
		// Unreachable by construction; kept so a future change cannot
		// silently hand an invalid path to a file system.
		return "", fmt.Errorf("%w: not a valid path", ErrInvalidName)
	}
	return name, nil
}
