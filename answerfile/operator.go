package answerfile

import (
	"crypto/rand"
	"net/http"
	"strings"
)

// ParseKeys returns the SSH public keys in the content of an
// authorized_keys or .pub file: one per line, blank lines and # comments
// skipped. The keys are checked where every key is, by the spec's
// validation when a file is rendered.
func ParseKeys(data []byte) []string {
	var keys []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	return keys
}

// SetCredentials gives root and every user of s the operator's
// credentials, replacing theirs: hash (a crypt hash such as "openssl passwd
// -6" makes; "" for none) as the password and keys as SSH keys. A user left
// without a password gets a random one that nobody knows, and sudo without
// a password: the installers want a password for the first user, and a
// key-only operator must still be able to become root.
func (s *Spec) SetCredentials(hash string, keys []string) {
	s.Root.Password, s.Root.SSHKeys = Password{Hash: hash}, keys
	for i := range s.Users {
		u := &s.Users[i]
		u.SSHKeys, u.Password = keys, Password{Hash: hash}
		if hash == "" {
			u.Password, u.SudoNoPassword = Password{Plain: Secret(rand.Text())}, true
		}
	}
}

// ReportHandler serves the installer's completion callback (Callback.URL):
// it reads each POSTed report with ParseReport, at most limit bytes, and
// passes it to fn, then answers 204 No Content. A body that is not a
// report is answered 400 with ParseReport's reason, which quotes nothing
// of the body but short cleaned excerpts, and fn is not called; so is a
// request fn refuses, with fn's error as the reason (the client reads it:
// it must hold no secret). Route only POST to it: it does not check the
// method.
func ReportHandler(limit int64, fn func(r *http.Request, rep *Report) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, err := ParseReport(r.Body, limit)
		if err != nil {
			http.Error(w, "pxekit: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := fn(r, rep); err != nil {
			http.Error(w, "pxekit: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
