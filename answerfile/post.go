package answerfile

import (
	"encoding/base64"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/pxekit/pxekit/internal/osid"
)

// ReportPath is where the post-install script leaves its JSON report in
// the installed system (see the package documentation).
const ReportPath = "/root/pxekit-report.json"

// postPlan says what the post-install script must do beyond the spec's
// steps, because the installer's own syntax cannot express it.
type postPlan struct {
	createUsers  []int // users[i] created by the script (useradd)
	rootPassword bool  // set root's hash with usermod
	rootKeys     bool  // write root's authorized_keys
	userKeys     bool  // write authorized_keys of every user
	allowRootSSH bool  // sshd drop-in permitting root password login
	timezone     bool  // set the zone by hand
	yumRepos     bool  // write /etc/yum.repos.d files
	aptRepos     bool  // write apt sources and keys
	tasks        []string
	install      []string // packages installed by the script
	purge        []string
	skipCheck    map[string]bool // users that exist only after first boot
}

// shq quotes s for POSIX sh.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// postScript is the POSIX sh run inside the installed system: accounts the
// installer could not create, repositories, the spec's steps, then the
// checks whose results form the report sent to the callback.
func postScript(pl *plan, pp postPlan) string {
	s := &pl.spec
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# pxekit post-install for %s: runs inside the installed system.", pl.info.ID)
	w("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	w("pxekit_failed=0")
	w("pxekit_checks=")
	w("pxekit_check() {")
	w("	pxekit_name=$1; shift")
	w("	if \"$@\" >/dev/null 2>&1; then pxekit_ok=true; else pxekit_ok=false; pxekit_failed=1; fi")
	w("	echo \"pxekit: check $pxekit_name: $pxekit_ok\"")
	w("	pxekit_checks=\"${pxekit_checks:+$pxekit_checks,}{\\\"name\\\":\\\"$pxekit_name\\\",\\\"ok\\\":$pxekit_ok}\"")
	w("}")
	if pp.timezone {
		w("ln -sf %s /etc/localtime && echo %s > /etc/timezone", shq("/usr/share/zoneinfo/"+s.Timezone), shq(s.Timezone))
	}
	if pp.rootPassword && s.Root.Password.Hash != "" {
		w("usermod -p %s root", shq(s.Root.Password.Hash))
	}
	if pp.rootKeys && len(s.Root.SSHKeys) > 0 {
		writeKeys(w, "root", "/root", s.Root.SSHKeys)
	}
	if pp.allowRootSSH && s.Root.AllowSSH {
		w("mkdir -p /etc/ssh/sshd_config.d")
		w("if grep -q '^Include /etc/ssh/sshd_config.d' /etc/ssh/sshd_config 2>/dev/null; then")
		w("	echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/01-pxekit-root.conf")
		w("else")
		w("	sed -i 's/^#*PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config")
		w("	grep -q '^PermitRootLogin yes' /etc/ssh/sshd_config || echo 'PermitRootLogin yes' >> /etc/ssh/sshd_config")
		w("fi")
	}
	admin := adminGroup(pl.info)
	for i, u := range s.Users {
		home := "/home/" + u.Name
		for _, g := range u.Groups {
			w("getent group %s >/dev/null || groupadd %s", g, g)
		}
		if slices.Contains(pp.createUsers, i) {
			args := []string{"useradd", "-m"}
			if u.FullName != "" {
				args = append(args, "-c", shq(u.FullName))
			}
			if u.Shell != "" {
				args = append(args, "-s", shq(u.Shell))
			}
			args = append(args, u.Name)
			w("id %s >/dev/null 2>&1 || %s", u.Name, strings.Join(args, " "))
			if u.Password.Hash != "" {
				w("usermod -p %s %s", shq(u.Password.Hash), u.Name)
			}
		}
		groups := slices.Clone(u.Groups)
		if u.Sudo {
			groups = append(groups, admin)
		}
		if len(groups) > 0 && !pp.skipCheck[u.Name] {
			w("usermod -aG %s %s", strings.Join(groups, ","), u.Name)
		}
		if u.SudoNoPassword {
			w("mkdir -p /etc/sudoers.d && echo %s > /etc/sudoers.d/90-pxekit-%s && chmod 0440 /etc/sudoers.d/90-pxekit-%s",
				shq(u.Name+" ALL=(ALL) NOPASSWD: ALL"), u.Name, u.Name)
		}
		if pp.userKeys && len(u.SSHKeys) > 0 && !pp.skipCheck[u.Name] {
			writeKeys(w, u.Name, home, u.SSHKeys)
		}
	}
	if pp.yumRepos {
		for _, r := range pl.repos {
			w("cat > %s <<'PXEKIT_REPO'", shq("/etc/yum.repos.d/"+r.name+".repo"))
			w("[%s]", r.name)
			w("name=%s", r.name)
			if r.baseURL != "" {
				w("baseurl=%s", r.baseURL)
			} else {
				w("mirrorlist=%s", r.mirrorList)
			}
			w("enabled=1")
			if r.gpgKey != "" {
				w("gpgcheck=1")
				w("gpgkey=%s", r.gpgKey)
			} else {
				w("gpgcheck=0")
			}
			w("PXEKIT_REPO")
		}
	}
	if pp.aptRepos && len(pl.repos) > 0 {
		w("mkdir -p /etc/apt/keyrings")
		for _, r := range pl.repos {
			key := "/etc/apt/keyrings/" + r.name + ".asc"
			w("curl -fsSL %s -o %s || wget -qO %s %s", shq(r.gpgKey), key, key, shq(r.gpgKey))
			w("echo %s > %s", shq(fmt.Sprintf("deb [signed-by=%s] %s %s %s", key, r.baseURL, r.suite, strings.Join(r.components, " "))),
				shq("/etc/apt/sources.list.d/"+r.name+".list"))
		}
		w("apt-get update")
	}
	if len(pp.tasks) > 0 {
		w("DEBIAN_FRONTEND=noninteractive tasksel install %s", strings.Join(pp.tasks, " "))
	}
	if len(pp.install) > 0 {
		w("DEBIAN_FRONTEND=noninteractive apt-get install -y %s", strings.Join(pp.install, " "))
	}
	if len(pp.purge) > 0 {
		w("DEBIAN_FRONTEND=noninteractive apt-get purge -y %s", strings.Join(pp.purge, " "))
	}
	profileHook := false
	for i, st := range s.Post {
		w("echo 'pxekit: post[%d]'", i)
		switch {
		case len(st.Enable) > 0:
			w("systemctl enable %s", strings.Join(st.Enable, " "))
		case len(st.Disable) > 0:
			w("systemctl disable %s", strings.Join(st.Disable, " "))
		case st.Prompt != "":
			c := promptColours[st.Prompt]
			w("cat > /etc/profile.d/pxekit-prompt.sh <<'PXEKIT_PROMPT'")
			w(`if [ -n "${BASH_VERSION:-}" ]; then PS1='\[\e[1;%sm\][\u@\h \W]\$\[\e[0m\] '; fi`, c)
			w("PXEKIT_PROMPT")
			profileHook = true
		case len(st.Aliases) > 0:
			for _, a := range st.Aliases {
				w("echo %s >> /etc/profile.d/pxekit-aliases.sh", shq("alias "+a.Name+"="+shq(a.Command)))
			}
			profileHook = true
		case st.File != nil:
			writeFile(w, i, *st.File)
		case len(st.Sysctl) > 0:
			for _, kv := range st.Sysctl {
				w("echo %s >> /etc/sysctl.d/90-pxekit.conf", shq(kv.Key+" = "+kv.Value))
			}
		case st.Shell != "":
			w("(")
			b.WriteString(strings.TrimSuffix(st.Shell, "\n"))
			b.WriteString("\n")
			w(") || echo 'pxekit: post[%d] failed'", i)
		}
	}
	if profileHook {
		// Interactive non-login bash shells read only bashrc files, which on
		// Debian and Ubuntu set PS1 themselves; source ours after them.
		hook := `for pxekit_f in /etc/profile.d/pxekit-*.sh; do [ -r "$pxekit_f" ] && . "$pxekit_f"; done`
		w("for f in /root/.bashrc /etc/skel/.bashrc /etc/bashrc /etc/bash.bashrc; do")
		w("	[ -f \"$f\" ] && ! grep -q pxekit_f \"$f\" && echo %s >> \"$f\"", shq(hook))
		w("done")
	}
	// Checks for the report.
	for _, l := range checkLines(pl, pp.skipCheck) {
		w("%s", l)
	}
	w("if [ \"$pxekit_failed\" = 0 ]; then pxekit_status=ok; else pxekit_status=failed; fi")
	w(`printf '{"stage":"installed","hostname":"%%s","os":"%%s","status":"%%s","checks":[%%s]}\n' %s %s "$pxekit_status" "$pxekit_checks" > %s`,
		shq(s.Hostname), shq(pl.info.ID), ReportPath)
	w("echo \"pxekit: post-install $pxekit_status\"")
	if s.Callback.URL != "" {
		installFirstBoot(&b, pl)
	}
	return b.String()
}

// checkLines are the pxekit_check calls for the spec's own checks: users
// (but those in skip), packages, enabled units and files.
func checkLines(pl *plan, skip map[string]bool) []string {
	s := &pl.spec
	var out []string
	for _, u := range s.Users {
		if !skip[u.Name] {
			out = append(out, fmt.Sprintf("pxekit_check %s id %s", shq("user "+u.Name), u.Name))
		}
	}
	pkgCheck := "dpkg -s"
	if pl.info.Family == osid.Anaconda {
		pkgCheck = "rpm -q"
	}
	for _, n := range s.Packages.Names {
		out = append(out, fmt.Sprintf("pxekit_check %s %s %s", shq("package "+n), pkgCheck, shq(n)))
	}
	for _, r := range pl.repos {
		if pl.info.Family == osid.Anaconda {
			out = append(out, fmt.Sprintf("pxekit_check %s test -f %s", shq("repo "+r.name), shq("/etc/yum.repos.d/"+r.name+".repo")))
		} else if r.baseURL != "" {
			// Wherever the installer or the script put it, one-line or
			// deb822 format.
			out = append(out, fmt.Sprintf("pxekit_check %s grep -rqsF -- %s /etc/apt/sources.list /etc/apt/sources.list.d",
				shq("repo "+r.name), shq(r.baseURL)))
		}
	}
	for _, st := range s.Post {
		for _, u := range st.Enable {
			out = append(out, fmt.Sprintf("pxekit_check %s systemctl is-enabled %s", shq("enabled "+u), shq(u)))
		}
		if st.File != nil {
			out = append(out, fmt.Sprintf("pxekit_check %s test -f %s", shq("file "+st.File.Path), shq(st.File.Path)))
		}
	}
	return out
}

func writeKeys(w func(string, ...any), user, home string, keys []string) {
	w("mkdir -p %s/.ssh && chmod 0700 %s/.ssh", home, home)
	for _, k := range keys {
		w("echo %s >> %s/.ssh/authorized_keys", shq(k), home)
	}
	w("chmod 0600 %s/.ssh/authorized_keys && chown -R %s: %s/.ssh", home, user, home)
	w("restorecon -R %s/.ssh 2>/dev/null || true", home)
}

func writeFile(w func(string, ...any), i int, f File) {
	w("mkdir -p %s", shq(path.Dir(f.Path)))
	delim := fmt.Sprintf("PXEKIT_FILE_%d", i)
	if strings.HasSuffix(f.Content, "\n") && !slices.Contains(strings.Split(f.Content, "\n"), delim) {
		w("cat > %s <<'%s'", shq(f.Path), delim)
		w("%s%s", f.Content, delim)
	} else {
		// Exact bytes (no trailing newline, or a line equal to the
		// delimiter): carry them in base64.
		w("base64 -d > %s <<'%s'", shq(f.Path), delim)
		enc := base64.StdEncoding.EncodeToString([]byte(f.Content))
		for len(enc) > 76 {
			w("%s", enc[:76])
			enc = enc[76:]
		}
		w("%s", enc)
		w("%s", delim)
	}
	mode := f.Mode
	if mode == "" {
		mode = "0644"
	}
	w("chmod %s %s", mode, shq(f.Path))
	if f.Owner != "" {
		w("chown %s %s", f.Owner, shq(f.Path))
	}
}
