package answerfile

import (
	"fmt"
)

// Size limits. A spec is written by people; these bound what a mistaken or
// hostile one can cost (memory while parsing, answer files the installers
// choke on) with room for any real install.
const (
	// MaxSpecBytes bounds the YAML that ParseSpec reads.
	MaxSpecBytes = 1 << 20
	// maxSpecNodes bounds the YAML nodes of a spec, aliases expanded.
	maxSpecNodes = 100000
	// maxStepBytes bounds one post step's shell or file content.
	maxStepBytes = 256 << 10
	// maxPostBytes bounds all post steps together.
	maxPostBytes = 1 << 20
	maxSteps     = 1000
	maxUsers     = 1000
	maxKeys      = 100 // SSH keys per account
	maxListItems = 5000
	maxNTP       = 16
	maxRepos     = 100
)

// validateLimits reports lists and texts over the limits above.
func (s *Spec) validateLimits(p *problems) {
	list := func(field string, n, limit int) {
		if n > limit {
			p.add(field, "%d entries: at most %d", n, limit)
		}
	}
	list("users", len(s.Users), maxUsers)
	list("root.ssh_keys", len(s.Root.SSHKeys), maxKeys)
	for i, u := range s.Users {
		list(fmt.Sprintf("users[%d].ssh_keys", i), len(u.SSHKeys), maxKeys)
		list(fmt.Sprintf("users[%d].groups", i), len(u.Groups), maxListItems)
	}
	list("repos", len(s.Repos), maxRepos)
	list("packages.names", len(s.Packages.Names), maxListItems)
	list("packages.groups", len(s.Packages.Groups), maxListItems)
	list("packages.exclude", len(s.Packages.Exclude), maxListItems)
	list("network.dns", len(s.Network.DNS), maxNTP)
	list("post", len(s.Post), maxSteps)
	total := 0
	for i, st := range s.Post {
		n := len(st.Shell)
		if st.File != nil {
			n += len(st.File.Content)
		}
		for _, a := range st.Aliases {
			n += len(a.Command)
		}
		for _, kv := range st.Sysctl {
			n += len(kv.Value)
		}
		n += len(st.Enable) + len(st.Disable)
		if n > maxStepBytes {
			p.add(fmt.Sprintf("post[%d]", i), "%d bytes: at most %d per step (ship large files from a repository or the callback server)", n, maxStepBytes)
		}
		total += n
	}
	if total > maxPostBytes {
		p.add("post", "%d bytes in all: at most %d", total, maxPostBytes)
	}
}
