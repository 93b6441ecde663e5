package answerfile

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Rounds limits and defaults from the SHA-crypt specification.
const (
	sha512DefaultRounds = 5000
	sha512MinRounds     = 1000
	sha512MaxRounds     = 999999999
	sha512MaxSalt       = 16
)

// ErrBadCryptSetting reports a crypt setting string ("$6$[rounds=N$]salt")
// that SHA512Crypt cannot use.
var ErrBadCryptSetting = errors.New("answerfile: bad SHA-512 crypt setting")

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// HashPassword hashes plaintext with SHA-512 crypt ("$6$", 5000 rounds) and a
// random 16-character salt read from r (crypto/rand when r is nil). Every
// installer this package targets accepts the result as an "encrypted"
// password, so plaintext never has to appear in an answer file.
func HashPassword(plaintext string, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var raw [sha512MaxSalt]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", fmt.Errorf("answerfile: reading salt: %w", err)
	}
	salt := make([]byte, sha512MaxSalt)
	for i, b := range raw {
		salt[i] = cryptAlphabet[int(b)%len(cryptAlphabet)]
	}
	return SHA512Crypt(plaintext, "$6$"+string(salt))
}

// SHA512Crypt implements the SHA-512 based crypt(3) scheme of Ulrich
// Drepper's "Unix crypt using SHA-256 and SHA-512" specification. setting is
// "$6$salt" or "$6$rounds=N$salt" (a full hash may be given: everything after
// the salt is ignored), so SHA512Crypt(pw, hash) == hash checks a password.
// As the specification requires, salts are cut to 16 characters and rounds
// are clamped to [1000, 999999999].
func SHA512Crypt(password, setting string) (string, error) {
	rest, ok := strings.CutPrefix(setting, "$6$")
	if !ok {
		return "", fmt.Errorf("%w: %q does not start with $6$", ErrBadCryptSetting, redactSetting(setting))
	}
	rounds := sha512DefaultRounds
	customRounds := false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		if !found {
			return "", fmt.Errorf("%w: rounds= not followed by $", ErrBadCryptSetting)
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%w: rounds %q: not a number", ErrBadCryptSetting, num)
		}
		rounds = int(min(max(n, sha512MinRounds), sha512MaxRounds))
		customRounds = true
		rest = after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > sha512MaxSalt {
		salt = salt[:sha512MaxSalt]
	}
	return string(sha512CryptRaw([]byte(password), []byte(salt), rounds, customRounds)), nil
}

// redactSetting keeps error messages from echoing something that may be a
// password pasted into the wrong field.
func redactSetting(s string) string {
	if len(s) > 3 {
		return s[:3] + "…"
	}
	return s
}

func sha512CryptRaw(pw, salt []byte, rounds int, customRounds bool) []byte {
	// Digest B: password, salt, password.
	b := sha512.New()
	b.Write(pw)
	b.Write(salt)
	b.Write(pw)
	sumB := b.Sum(nil)

	// Digest A: password, salt, then B repeated to the password's length.
	a := sha512.New()
	a.Write(pw)
	a.Write(salt)
	n := len(pw)
	for ; n > 64; n -= 64 {
		a.Write(sumB)
	}
	a.Write(sumB[:n])
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(pw)
		}
	}
	sumA := a.Sum(nil)

	// Byte sequence P: digest DP (password repeated) stretched to len(pw).
	dp := sha512.New()
	for range pw {
		dp.Write(pw)
	}
	sumDP := dp.Sum(nil)
	p := make([]byte, 0, len(pw))
	for n := len(pw); n > 0; n -= 64 {
		p = append(p, sumDP[:min(n, 64)]...)
	}

	// Byte sequence S: digest DS (salt repeated 16+A[0] times) cut to len(salt).
	ds := sha512.New()
	for i := 0; i < 16+int(sumA[0]); i++ {
		ds.Write(salt)
	}
	sumDS := ds.Sum(nil)
	s := make([]byte, 0, len(salt))
	for n := len(salt); n > 0; n -= 64 {
		s = append(s, sumDS[:min(n, 64)]...)
	}

	c := sumA
	h := sha512.New()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	out := make([]byte, 0, 3+len("rounds=999999999$")+len(salt)+1+86)
	out = append(out, "$6$"...)
	if customRounds {
		out = append(out, "rounds="...)
		out = strconv.AppendInt(out, int64(rounds), 10)
		out = append(out, '$')
	}
	out = append(out, salt...)
	out = append(out, '$')
	// The specification's byte permutation, three bytes to four characters.
	order := [...][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
		{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
		{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
		{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
		{62, 20, 41},
	}
	for _, o := range order {
		out = b64From24(out, c[o[0]], c[o[1]], c[o[2]], 4)
	}
	out = b64From24(out, 0, 0, c[63], 2)
	return out
}

func b64From24(out []byte, b2, b1, b0 byte, n int) []byte {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for ; n > 0; n-- {
		out = append(out, cryptAlphabet[w&0x3f])
		w >>= 6
	}
	return out
}
