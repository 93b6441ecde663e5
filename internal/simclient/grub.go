package simclient

import (
	"errors"
	"fmt"
	"strings"
)

// GRUBBoot is what GRUB boots from a menu's default entry.
type GRUBBoot struct {
	// Kernel is the linux (or linuxefi) command's file, as written.
	Kernel string
	// Args are the kernel's arguments, unquoted, variables not expanded.
	Args []string
	// Initrds are the initrd (or initrdefi) commands' files, in order.
	Initrds []string
	// Answer is the answer-file location of the kernel line: d-i's url=,
	// anaconda's inst.ks= (or ks=), Ubuntu's ds=nocloud-net;s= seed
	// directory; empty when the line names none.
	Answer string
}

// ParseGRUBMenu returns what the default entry of a grub.cfg boots: the
// entry whose --id (or, failing that, title) is "set default=", else the
// first entry. It reads the subset of GRUB's language that pxekit's menus
// and hand-written PXE menus use: set, menuentry blocks, linux and initrd.
// A default entry without a linux line is an error.
func ParseGRUBMenu(cfg string) (GRUBBoot, error) {
	def, haveDef := "", false
	type entry struct {
		id, title string
		boot      GRUBBoot
		hasLinux  bool
	}
	var entries []entry
	var cur *entry
	for _, line := range strings.Split(cfg, "\n") {
		w, err := GRUBWords(strings.TrimSpace(line))
		if err != nil || len(w) == 0 {
			continue
		}
		switch {
		case w[0] == "set" && len(w) > 1 && strings.HasPrefix(w[1], "default=") && cur == nil:
			def, haveDef = strings.TrimPrefix(w[1], "default="), true
		case w[0] == "menuentry":
			entries = append(entries, entry{})
			cur = &entries[len(entries)-1]
			for i := 1; i < len(w); i++ {
				switch {
				case w[i] == "--id" && i+1 < len(w):
					cur.id = w[i+1]
					i++
				case strings.HasPrefix(w[i], "--id="):
					cur.id = strings.TrimPrefix(w[i], "--id=")
				case cur.title == "" && !strings.HasPrefix(w[i], "-") && w[i] != "{":
					cur.title = w[i]
				}
			}
		case w[0] == "}":
			cur = nil
		case cur == nil:
		case (w[0] == "linux" || w[0] == "linuxefi") && len(w) > 1:
			cur.hasLinux = true
			cur.boot.Kernel, cur.boot.Args = w[1], w[2:]
			cur.boot.Answer = answerArg(w[2:])
		case w[0] == "initrd" || w[0] == "initrdefi":
			cur.boot.Initrds = append(cur.boot.Initrds, w[1:]...)
		}
	}
	if len(entries) == 0 {
		return GRUBBoot{}, errors.New("grub.cfg has no menu entry")
	}
	pick := &entries[0]
	if haveDef {
		pick = nil
		for i := range entries {
			if e := &entries[i]; e.id == def || e.title == def || fmt.Sprint(i) == def {
				pick = e
				break
			}
		}
		if pick == nil {
			return GRUBBoot{}, fmt.Errorf("grub.cfg: no entry %q (the default)", def)
		}
	}
	if !pick.hasLinux {
		return GRUBBoot{}, fmt.Errorf("grub.cfg: default entry %q has no linux line", def)
	}
	return pick.boot, nil
}

// answerArg finds the answer-file location among kernel arguments.
func answerArg(args []string) string {
	answer := ""
	for _, a := range args {
		for _, key := range []string{"url=", "inst.ks=", "ks="} {
			if v, ok := strings.CutPrefix(a, key); ok {
				answer = v
			}
		}
		if v, ok := strings.CutPrefix(a, "ds=nocloud-net;"); ok {
			for _, f := range strings.Split(v, ";") {
				if s, ok := strings.CutPrefix(f, "s="); ok {
					answer = s
				}
			}
		}
	}
	return answer
}

// GRUBWords splits one line of a grub.cfg into words the way GRUB's lexer
// does, undoing its quoting: single quotes are literal, double quotes
// allow \\ \" \$ escapes, a backslash outside quotes escapes the next byte,
// and "#" at the start of a word begins a comment. Variables ($x, ${x})
// are kept as written (see ExpandGRUBVars). An unterminated quote is an
// error.
func GRUBWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false // inside a word
	var quote byte
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case quote == '"':
			switch {
			case ch == '"':
				quote = 0
			case ch == '\\' && i+1 < len(line) && strings.IndexByte("\\\"$", line[i+1]) >= 0:
				i++
				cur.WriteByte(line[i])
			default:
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			in = true
		case ch == ' ' || ch == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case ch == '#' && !in:
			return words, nil
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// ExpandGRUBVars replaces ${name} and $name of the variables in vars the
// way GRUB expands a command's words; other variables stay as written.
func ExpandGRUBVars(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		name, end := "", i+1
		if end < len(s) && s[end] == '{' {
			if j := strings.IndexByte(s[end:], '}'); j > 0 {
				name, end = s[end+1:end+j], end+j+1
			}
		} else {
			for end < len(s) && (s[end] == '_' || s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z' || s[end] >= '0' && s[end] <= '9') {
				end++
			}
			name = s[i+1 : end]
		}
		v, ok := vars[name]
		if !ok || name == "" {
			b.WriteByte('$')
			continue
		}
		b.WriteString(v)
		i = end - 1
	}
	return b.String()
}
