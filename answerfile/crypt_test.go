package answerfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test vectors published with the SHA-crypt specification.
func TestSHA512CryptVectors(t *testing.T) {
	tests := []struct{ setting, password, want string }{
		{"$6$saltstring", "Hello world!",
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"$6$rounds=5000$toolongsaltstring", "This is just a test",
			"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
			"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
		{"$6$rounds=77777$short", "we have a short salt string but not a short password",
			"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
		{"$6$rounds=123456$asaltof16chars..", "a short string",
			"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
		{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
			"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			got, err := SHA512Crypt(tt.password, tt.setting)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			// A full hash works as the setting: that is how passwords are checked.
			again, err := SHA512Crypt(tt.password, got)
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

func TestSHA512CryptBadSetting(t *testing.T) {
	for _, s := range []string{"", "$5$abc", "$6$rounds=x$abc", "$6$rounds=12", "secret"} {
		_, err := SHA512Crypt("pw", s)
		assert.True(t, errors.Is(err, ErrBadCryptSetting), s)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret")
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret", bytes.NewReader(bytes.Repeat([]byte{7}, 16)))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$6$"+strings.Repeat("5", 16)+"$"), h)
	check, err := SHA512Crypt("s3cret", h)
	require.NoError(t, err)
	assert.Equal(t, h, check)

	h1, err := HashPassword("s3cret", nil)
	require.NoError(t, err)
	h2, err := HashPassword("s3cret", nil)
	require.NoError(t, err)
	assert.NotEqual(t, h1, h2, "random salts")

	_, err = HashPassword("x", bytes.NewReader(nil))
	assert.Error(t, err)
}

func BenchmarkSHA512Crypt(b *testing.B) {
	for b.Loop() {
		_, _ = SHA512Crypt("password", "$6$saltstring")
	}
}
