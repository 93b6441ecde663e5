package answerfile

import (
	"strconv"
	"strings"

	"github.com/pxekit/pxekit/internal/osid"
)

// parseHash checks the shape of a crypt(3) hash: a known method, a salt of
// the method's alphabet and length, and a hash of exactly the method's
// length, so that a truncated copy ("$6$salt") is caught before install
// time. It returns the method id ("6", "y", "2b", ...) and "" when the hash
// is well formed, or a reason. The reason never quotes the hash.
func parseHash(h string) (id, reason string) {
	if !strings.HasPrefix(h, "$") {
		return "", "not a crypt(3) hash: it must start with $ (like $6$salt$...)"
	}
	f := strings.Split(h[1:], "$")
	id = f[0]
	alpha := func(s string) bool {
		return s != "" && strings.Trim(s, cryptAlphabet) == ""
	}
	switch id {
	case "1", "5", "6":
		want := map[string]int{"1": 22, "5": 43, "6": 86}[id]
		maxSalt := map[string]int{"1": 8, "5": 16, "6": 16}[id]
		rest := f[1:]
		if id != "1" && len(rest) > 0 && strings.HasPrefix(rest[0], "rounds=") {
			n, err := strconv.Atoi(strings.TrimPrefix(rest[0], "rounds="))
			if err != nil || n < 1000 || n > 999999999 {
				return id, "rounds= must be a number from 1000 to 999999999"
			}
			rest = rest[1:]
		}
		switch {
		case len(rest) != 2:
			return id, "truncated or malformed: a $" + id + "$ hash is $" + id + "$salt$hash"
		case len(rest[0]) > maxSalt || strings.Trim(rest[0], cryptAlphabet) != "":
			return id, "the salt must be at most " + strconv.Itoa(maxSalt) + " characters of [./0-9A-Za-z]"
		case len(rest[1]) != want || !alpha(rest[1]):
			return id, "truncated or malformed: the hash part of $" + id + "$ is " + strconv.Itoa(want) + " characters of [./0-9A-Za-z]"
		}
	case "y":
		// $y$params$salt$hash, hash 43 characters.
		if len(f) != 4 || !alpha(f[1]) || !alpha(f[2]) || len(f[3]) != 43 || !alpha(f[3]) {
			return id, "truncated or malformed: a yescrypt hash is $y$params$salt$ and 43 characters"
		}
	case "2a", "2b", "2y":
		// $2b$NN$ then 22 characters of salt and 31 of hash.
		if len(f) != 3 || len(f[1]) != 2 || f[1] < "04" || f[1] > "31" || len(f[2]) != 53 || !alpha(f[2]) {
			return id, "truncated or malformed: a bcrypt hash is $" + id + "$NN$ and 53 characters"
		}
	default:
		return id, "unknown hash method: use $6$ (SHA-512, mkpasswd -m sha-512), $5$, $y$ or $2b$"
	}
	return id, ""
}

// hashUnsupported says why the OS's crypt cannot verify a hash of method
// id, or "" when it can. glibc's own crypt (CentOS/RHEL/Anolis 7, Debian 9
// and 10) knows MD5, SHA-256 and SHA-512 crypt only; libxcrypt adds
// yescrypt and bcrypt. pxekit accepts those only where it knows the
// target's libxcrypt has them: Debian 11+, Ubuntu 22.04+, EL 9.
func hashUnsupported(info osid.Info, id string) string {
	switch id {
	case "1", "5", "6":
		return ""
	}
	switch {
	case info.Family == osid.DebianDI && info.Major >= 11,
		info.Family == osid.Subiquity && info.Major >= 22,
		isELClone(info) && info.ELMajor >= 9:
		return ""
	case info.Family == osid.DebianDI || isELClone(info) && info.ELMajor == 7:
		return info.ID + " verifies passwords with glibc's crypt, which knows only $1$, $5$ and $6$ hashes"
	}
	return "pxekit does not know " + info.ID + "'s crypt to verify $" + id + "$ hashes"
}
