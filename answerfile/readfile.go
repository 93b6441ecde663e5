package answerfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// ErrNoKeys means that a file, or each of several, holds no SSH public key.
var ErrNoKeys = errors.New("no SSH public key")

// maxKeyFile bounds the read of a key file: an authorized_keys file of a
// thousand RSA keys is under 1 MiB.
const maxKeyFile = 1 << 20

// ReadKeys returns the SSH public keys in the file at path, parsed as
// ParseKeys does. A file holding none is an error wrapping ErrNoKeys that
// names the file; so is one larger than 1 MiB, which no key file is. Only
// a regular file is read: a named pipe is refused, not waited on.
func ReadKeys(path string) ([]string, error) {
	data, err := readFile(path, maxKeyFile)
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%w: %w", err, ErrNoKeys)
	} else if err != nil {
		return nil, err
	}
	keys := ParseKeys(data)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w in the file", path, ErrNoKeys)
	}
	return keys, nil
}

// ReadSpec reads the spec in the file at path with ParseSpec. Errors name
// the file: "spec.yaml: answerfile: parsing spec: line 3: ...". Only a
// regular file of at most MaxSpecBytes is read: a named pipe is refused,
// not waited on.
func ReadSpec(path string) (*Spec, error) {
	data, err := readFile(path, MaxSpecBytes)
	if err != nil {
		return nil, err
	}
	s, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// errTooLarge is readFile's error for a file over its bound.
var errTooLarge = errors.New("too large")

// readFile reads the regular file at path, of at most limit bytes. A
// named pipe or device is refused before it is opened, so it cannot block.
func readFile(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("%s: %w (%d bytes at most)", path, errTooLarge, limit)
	}
	return data, nil
}

// operatorKeyNames are the files of ~/.ssh that OperatorKeyFiles lists, in
// order: the user's own public keys, strongest kind first, then the keys
// allowed to log in to this host, which are the operator's too.
var operatorKeyNames = [...]string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub", "authorized_keys"}

// OperatorKeyFiles returns where the SSH public keys of the operator
// running the program usually are, most preferred first: id_ed25519.pub,
// id_ecdsa.pub, id_rsa.pub and authorized_keys in the .ssh directory of the
// user named by $SUDO_USER when that user exists (the operator behind
// sudo, whose keys are the ones wanted, not root's), else of the current
// user ($HOME). The files need not exist. It fails only when no home
// directory is known.
func OperatorKeyFiles() ([]string, error) {
	home, err := os.UserHomeDir()
	if sudo := os.Getenv("SUDO_USER"); sudo != "" {
		if u, uerr := user.Lookup(sudo); uerr == nil && u.HomeDir != "" {
			home, err = u.HomeDir, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the operator's SSH keys: %w", err)
	}
	files := make([]string, 0, len(operatorKeyNames))
	for _, n := range operatorKeyNames {
		files = append(files, filepath.Join(home, ".ssh", n))
	}
	return files, nil
}

// OperatorKeys returns the keys of the first of OperatorKeyFiles that
// holds one, and that file's path, so that a program can say whose keys
// it installs. Files that are missing, unreadable or empty are passed
// over; when none holds a key the error wraps ErrNoKeys and names the
// files looked at.
func OperatorKeys() (keys []string, from string, err error) {
	files, err := OperatorKeyFiles()
	if err != nil {
		return nil, "", err
	}
	return firstKeys(files)
}

// firstKeys is OperatorKeys over a given list of files.
func firstKeys(files []string) ([]string, string, error) {
	for _, f := range files {
		if keys, err := ReadKeys(f); err == nil {
			return keys, f, nil
		}
	}
	return nil, "", fmt.Errorf("%w in %s", ErrNoKeys, strings.Join(files, ", "))
}
