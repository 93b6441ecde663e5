package answerfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoCredentials is a spec that sets no password and no SSH key of its
// own: the installed system would be reachable only with the public demo
// password, or not at all.
var ErrNoCredentials = errors.New("no password and no SSH key set")

// ErrDemoMixed is a spec that sets a password or key of its own and still
// leaves the public demo password on some account.
var ErrDemoMixed = errors.New("the public demo password is still on an account")

// Credentials is what a spec's accounts carry.
type Credentials struct {
	// Own says some account has a password that is not the demo password,
	// or an SSH key.
	Own bool
	// Demo names the accounts whose password is the public demo password
	// ("root", "ops"), in spec order.
	Demo []string
}

// Credentials inspects s's accounts. A password counts as the demo
// password when its plaintext is DemoPassword or its hash is a SHA-512
// crypt of it, whatever the salt (hashes with more than 100,000 rounds are
// not tried, so that a hostile spec cannot make this slow; nobody publishes
// a demo hash that slow).
func (s *Spec) Credentials() Credentials {
	var c Credentials
	look := func(name string, p Password, keys []string) {
		if len(keys) > 0 {
			c.Own = true
		}
		switch {
		case p.IsZero():
		case isDemoPassword(p):
			c.Demo = append(c.Demo, name)
		default:
			c.Own = true
		}
	}
	look("root", s.Root.Password, s.Root.SSHKeys)
	for _, u := range s.Users {
		look(u.Name, u.Password, u.SSHKeys)
	}
	return c
}

func isDemoPassword(p Password) bool {
	if string(p.Plain) == DemoPassword {
		return true
	}
	h := p.Hash
	if !strings.HasPrefix(h, "$6$") {
		return false
	}
	if r, ok := strings.CutPrefix(h, "$6$rounds="); ok {
		n, _, _ := strings.Cut(r, "$")
		if v, err := strconv.Atoi(n); err != nil || v > 100000 {
			return false
		}
	}
	got, err := SHA512Crypt(DemoPassword, h)
	return err == nil && got == h
}

// RequireCredentials enforces the rule that no default credential reaches
// an installed system once the operator sets one. A spec with a password
// or key of its own must not keep the demo password anywhere
// (ErrDemoMixed); a spec with neither is refused (ErrNoCredentials) unless
// allowDemo, and then every account without a password gets the demo
// password, root included, and the sudo user "ops" of DemoSpec is added
// when there is no user: s is modified. It returns the accounts that carry
// the demo password, for a warning such as DemoWarning's.
func (s *Spec) RequireCredentials(allowDemo bool) ([]string, error) {
	c := s.Credentials()
	switch {
	case c.Own && len(c.Demo) > 0:
		return nil, fmt.Errorf("%w: %s (give them your own password or key, or remove them)", ErrDemoMixed, strings.Join(c.Demo, ", "))
	case c.Own:
		return nil, nil
	case !allowDemo:
		return nil, ErrNoCredentials
	}
	demo := DemoSpec("")
	if s.Root.Password.IsZero() {
		s.Root.Password = demo.Root.Password
	}
	for i := range s.Users {
		if s.Users[i].Password.IsZero() {
			s.Users[i].Password = demo.Users[0].Password
		}
	}
	if len(s.Users) == 0 {
		s.Users = append(s.Users, demo.Users[0])
	}
	return s.Credentials().Demo, nil
}

// DemoWarning is the start-up warning for accounts carrying the public
// demo password.
func DemoWarning(accounts []string) string {
	return fmt.Sprintf("installed systems will have the PUBLIC demo password %q on account(s) %s, and an SSH server: anyone on the network can log in; for a lab only",
		DemoPassword, strings.Join(accounts, ", "))
}
