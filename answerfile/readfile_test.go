package answerfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const opKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPxekitTestKeyOnlyNotARealKey00000000000000 op@lab"

// fileMaker gives a function that writes a file into a fresh directory,
// and the path of a named pipe there.
func fileMaker(t *testing.T) (write func(name, content string) string, fifo string) {
	dir := t.TempDir()
	write = func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	fifo = filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	return write, fifo
}

func TestReadKeys(t *testing.T) {
	write, fifo := fileMaker(t)
	dir := filepath.Dir(fifo)
	big := write("big", string(make([]byte, maxKeyFile+1)))
	for _, tc := range []struct {
		name, path string
		want       []string
		err        error  // errors.Is
		msg        string // in the message
	}{
		{"one key", write("one.pub", opKey+"\n"), []string{opKey}, nil, ""},
		{"comments and blanks", write("ak", "# mine\n\n"+opKey+"\n  \n"+opKey+"2\n"), []string{opKey, opKey + "2"}, nil, ""},
		{"empty", write("empty", ""), nil, ErrNoKeys, "empty: no SSH public key in the file"},
		{"comments only", write("c", "# nothing\n"), nil, ErrNoKeys, "no SSH public key"},
		{"missing", filepath.Join(dir, "nope"), nil, os.ErrNotExist, "nope"},
		{"fifo", fifo, nil, nil, "not a regular file"},
		{"directory", dir, nil, nil, "not a regular file"},
		{"too large", big, nil, ErrNoKeys, "too large (1048576 bytes at most)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ReadKeys(tc.path)
			if tc.want != nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, keys)
				return
			}
			require.Error(t, err)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
			}
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestOperatorKeyFiles(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SUDO_USER", "")
	files, err := OperatorKeyFiles()
	require.NoError(t, err)
	ssh := filepath.Join(home, ".ssh")
	assert.Equal(t, []string{filepath.Join(ssh, "id_ed25519.pub"), filepath.Join(ssh, "id_ecdsa.pub"),
		filepath.Join(ssh, "id_rsa.pub"), filepath.Join(ssh, "authorized_keys")}, files)

	// Behind sudo, the operator's home wins over $HOME; a SUDO_USER that
	// does not exist is passed over.
	t.Setenv("SUDO_USER", "root")
	files, err = OperatorKeyFiles()
	require.NoError(t, err)
	assert.Equal(t, "/root/.ssh/id_ed25519.pub", files[0])
	t.Setenv("SUDO_USER", "no-such-user-pxekit")
	files, err = OperatorKeyFiles()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(ssh, "id_ed25519.pub"), files[0])
}

func TestOperatorKeys(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SUDO_USER", "")
	ssh := filepath.Join(home, ".ssh")
	require.NoError(t, os.Mkdir(ssh, 0o700))

	_, _, err := OperatorKeys()
	require.ErrorIs(t, err, ErrNoKeys)
	assert.ErrorContains(t, err, filepath.Join(ssh, "authorized_keys"), "the error names where it looked")

	// authorized_keys serves when there is no key pair; an empty
	// id_ecdsa.pub is passed over; id_rsa.pub beats authorized_keys.
	require.NoError(t, os.WriteFile(filepath.Join(ssh, "authorized_keys"), []byte(opKey+"-ak\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(ssh, "id_ecdsa.pub"), nil, 0o600))
	keys, from, err := OperatorKeys()
	require.NoError(t, err)
	assert.Equal(t, []string{opKey + "-ak"}, keys)
	assert.Equal(t, filepath.Join(ssh, "authorized_keys"), from)

	require.NoError(t, os.WriteFile(filepath.Join(ssh, "id_rsa.pub"), []byte(opKey+"-rsa\n"), 0o600))
	keys, from, err = OperatorKeys()
	require.NoError(t, err)
	assert.Equal(t, []string{opKey + "-rsa"}, keys)
	assert.Equal(t, filepath.Join(ssh, "id_rsa.pub"), from)
}

func TestReadSpec(t *testing.T) {
	write, fifo := fileMaker(t)
	dir := filepath.Dir(fifo)
	good := write("good.yaml", "hostname: s1\ndisk: {wipe: true}\n")
	spec, err := ReadSpec(good)
	require.NoError(t, err)
	assert.Equal(t, "s1", spec.Hostname)

	for _, tc := range []struct {
		name, path, msg string
	}{
		{"unknown key", write("bad.yaml", "hostname: s1\nhostnme: x\n"), "bad.yaml: answerfile: parsing spec: "},
		{"missing", filepath.Join(dir, "nope.yaml"), "nope.yaml"},
		{"fifo", fifo, "fifo: not a regular file"},
		{"too large", write("big.yaml", "# "+string(make([]byte, MaxSpecBytes))), "big.yaml: too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSpec(tc.path)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}
