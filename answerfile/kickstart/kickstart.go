// Package kickstart reads hand-written anaconda kickstart files into a
// typed model (commands with their options, sections with their flags and
// bodies, %include kept verbatim, unknown commands kept with a warning)
// and writes them back equivalently, so that teams can inspect their
// existing files and migrate them to answerfile specs.
package kickstart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// ErrSyntax reports a kickstart line the parser cannot read (an
// unterminated quote, %end outside a section).
var ErrSyntax = errors.New("kickstart: syntax error")

// File is a parsed kickstart file: every line in order, typed, so that
// hand-written files can be inspected, edited and written back.
type File struct {
	Lines []Line
	// Warnings are things kept but worth a look (unknown commands, a
	// section without %end). They are not written back.
	Warnings []string
}

// Line is one top-level element; exactly one of Command, Section is set,
// or neither for a comment, blank line or %include kept verbatim in Raw.
type Line struct {
	// Raw is the text of a comment, a blank line, or a %include/%ksappend
	// line, written back as is.
	Raw     string
	Command *Command
	Section *Section
}

// Command is a command line such as `network --bootproto=dhcp --device=link`.
type Command struct {
	Name string
	// Args are the words after the name, options and positional arguments
	// in their original order.
	Args []Arg
	// Comment is a trailing "# ..." comment, without the "#".
	Comment string
	// Unknown is set for commands missing from every dialect's table; they
	// are kept verbatim.
	Unknown bool
}

// Arg is "--name=value", "--name" or a positional word.
type Arg struct {
	Option   bool   // starts with - or --
	Name     string // option name with its dashes ("--size"), or the word
	Value    string
	HasValue bool // "--name=value" (or "--name=")
}

// Section is %packages, %pre, %post, %addon … up to %end.
type Section struct {
	Name string // "packages", "pre", "post", "addon", ...
	Args []Arg  // flags such as --nochroot, --log=/path, or the addon name
	Body []string
}

// option returns the value of option name ("--log" or "log") and whether
// it is present.
func (a argList) option(name string) (string, bool) {
	if !strings.HasPrefix(name, "-") {
		name = "--" + name
	}
	for _, x := range a {
		if x.Option && x.Name == name {
			return x.Value, true
		}
	}
	return "", false
}

type argList []Arg

// Option returns the value of the command's option ("--size" or "size")
// and whether it is present.
func (c *Command) Option(name string) (string, bool) { return argList(c.Args).option(name) }

// Option returns the value of the section's flag and whether it is present.
func (s *Section) Option(name string) (string, bool) { return argList(s.Args).option(name) }

// Positional returns the command's non-option words.
func (c *Command) Positional() []string {
	var out []string
	for _, a := range c.Args {
		if !a.Option {
			out = append(out, a.Name)
		}
	}
	return out
}

var ksSections = []string{"packages", "pre", "pre-install", "post", "onerror", "traceback", "addon", "anaconda"}

// Parse reads a kickstart file. Unknown commands are kept (with a
// warning), never dropped; %include and %ksappend lines are kept verbatim.
func Parse(data []byte) (*File, error) {
	ks := &File{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var cur *Section
	curLine := 0
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		trim := strings.TrimSpace(line)
		if cur != nil {
			// As pykickstart: the first whitespace-separated word is
			// exactly %end ("%end#x" is a body line, "%end # x" ends).
			if firstWord(trim) == "%end" {
				ks.Lines = append(ks.Lines, Line{Section: cur})
				cur = nil
				continue
			}
			if name, ok := sectionName(trim); ok && name != "" {
				ks.Warnings = append(ks.Warnings, fmt.Sprintf("line %d: %%%s before %%end of the section opened on line %d; %%end added", n, name, curLine))
				ks.Lines = append(ks.Lines, Line{Section: cur})
				cur = nil
			} else {
				cur.Body = append(cur.Body, line)
				continue
			}
		}
		switch {
		case trim == "" || strings.HasPrefix(trim, "#"):
			ks.Lines = append(ks.Lines, Line{Raw: line})
			continue
		case strings.HasPrefix(trim, "%include") || strings.HasPrefix(trim, "%ksappend"):
			ks.Lines = append(ks.Lines, Line{Raw: trim})
			continue
		case firstWord(trim) == "%end":
			return nil, fmt.Errorf("%w: line %d: %%end outside a section", ErrSyntax, n)
		}
		if strings.HasPrefix(trim, "%") {
			// The section name is taken as written; its flags are words.
			first := strings.Fields(trim)[0]
			words, _, err := ksSplit(trim[len(first):])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, n, err)
			}
			name := first[1:]
			if !slices.Contains(ksSections, name) {
				ks.Warnings = append(ks.Warnings, fmt.Sprintf("line %d: unknown section %%%s kept", n, name))
			}
			cur = &Section{Name: name, Args: parseArgs(words)}
			curLine = n
			continue
		}
		words, comment, err := ksSplit(trim)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, n, err)
		}
		if len(words) == 0 { // only a comment after whitespace
			ks.Lines = append(ks.Lines, Line{Raw: line})
			continue
		}
		cmd := &Command{Name: words[0], Args: parseArgs(words[1:]), Comment: comment}
		if _, ok := ksKnownCommands[cmd.Name]; !ok {
			cmd.Unknown = true
			ks.Warnings = append(ks.Warnings, fmt.Sprintf("line %d: unknown command %q kept verbatim", n, cmd.Name))
		}
		ks.Lines = append(ks.Lines, Line{Command: cmd})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kickstart: reading: %w", err)
	}
	if cur != nil {
		ks.Warnings = append(ks.Warnings, fmt.Sprintf("line %d: %%%s has no %%end; added", curLine, cur.Name))
		ks.Lines = append(ks.Lines, Line{Section: cur})
	}
	return ks, nil
}

// firstWord is the line's first whitespace-separated word.
func firstWord(trim string) string {
	if f := strings.Fields(trim); len(f) > 0 {
		return f[0]
	}
	return ""
}

// sectionName reports whether a trimmed line opens a section.
func sectionName(trim string) (string, bool) {
	if !strings.HasPrefix(trim, "%") {
		return "", false
	}
	w := strings.Fields(trim)[0]
	name := strings.TrimPrefix(w, "%")
	if slices.Contains(ksSections, name) {
		return name, true
	}
	return "", false
}

func parseArgs(words []string) []Arg {
	args := make([]Arg, 0, len(words))
	for _, w := range words {
		if strings.HasPrefix(w, "-") && len(w) > 1 {
			name, val, has := strings.Cut(w, "=")
			args = append(args, Arg{Option: true, Name: name, Value: val, HasValue: has})
		} else {
			args = append(args, Arg{Name: w})
		}
	}
	return args
}

// ksSplit splits a command line the way pykickstart does (Python's
// shlex.split in POSIX mode with comments): shell-like words with quotes
// removed; a backslash outside quotes takes the next character literally;
// inside double quotes only \" and \\ are escapes (so "\$" is a
// backslash and a dollar); "#" outside quotes starts a comment, also in the
// middle of a word ("a#b" is the word "a").
func ksSplit(s string) (words []string, comment string, err error) {
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#':
			if inWord {
				words = append(words, cur.String())
			}
			return words, strings.TrimPrefix(s[i+1:], " "), nil
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, "", errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, "", errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, "", errors.New("backslash at the end of the line")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, "", nil
}

// ksQuote quotes a word only when it needs it, so that ksSplit (and
// pykickstart) read it back unchanged.
func ksQuote(w string) string {
	if w != "" && !strings.ContainsAny(w, "\"'#\\") && w[0] != '%' && !strings.ContainsFunc(w, unicode.IsSpace) {
		return w
	}
	if !strings.Contains(w, "'") {
		return "'" + w + "'"
	}
	// Inside double quotes only \ and " need a backslash; $ and ` are
	// literal to pykickstart.
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(w) + `"`
}

func formatArgs(b *strings.Builder, args []Arg) {
	for _, a := range args {
		b.WriteByte(' ')
		switch {
		case a.Option && a.HasValue && ksQuote(a.Name) == a.Name:
			b.WriteString(a.Name)
			b.WriteByte('=')
			if a.Value != "" {
				b.WriteString(ksQuote(a.Value))
			} else {
				b.WriteString("''")
			}
		case a.Option && a.HasValue:
			b.WriteString(ksQuote(a.Name + "=" + a.Value))
		default:
			b.WriteString(ksQuote(a.Name))
		}
	}
}

// Format writes the kickstart back. It is equivalent to the input (same
// commands, options, sections and bodies; comments and blank lines kept)
// though quoting may be normalised and a missing %end is added.
func (ks *File) Format() []byte {
	var b strings.Builder
	for _, l := range ks.Lines {
		switch {
		case l.Command != nil:
			b.WriteString(ksQuote(l.Command.Name))
			formatArgs(&b, l.Command.Args)
			if l.Command.Comment != "" {
				b.WriteString(" # ")
				b.WriteString(l.Command.Comment)
			}
		case l.Section != nil:
			b.WriteString("%" + l.Section.Name)
			formatArgs(&b, l.Section.Args)
			b.WriteByte('\n')
			for _, body := range l.Section.Body {
				b.WriteString(body)
				b.WriteByte('\n')
			}
			b.WriteString("%end")
		default:
			b.WriteString(l.Raw)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Commands returns the commands named name ("part"), in order.
func (ks *File) Commands(name string) []*Command {
	var out []*Command
	for _, l := range ks.Lines {
		if l.Command != nil && l.Command.Name == name {
			out = append(out, l.Command)
		}
	}
	return out
}

// Sections returns the sections named name ("post"), in order.
func (ks *File) Sections(name string) []*Section {
	var out []*Section
	for _, l := range ks.Lines {
		if l.Section != nil && l.Section.Name == name {
			out = append(out, l.Section)
		}
	}
	return out
}

// ksKnownCommands are the command names of pykickstart's handlers from RHEL
// 7 to Fedora 33 and RHEL 9, aliases included; anything else is kept with a
// warning.
var ksKnownCommands = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, c := range strings.Fields(`auth authconfig authselect autopart autostep bootloader btrfs cdrom clearpart
		cmdline device deviceprobe dmraid driverdisk eula fcoe firewall firstboot graphical group halt harddrive
		hmc ignoredisk install interactive iscsi iscsiname keyboard lang langsupport liveimg logging logvol
		mediacheck method module monitor mount mouse multipath network nfs nvdimm ostreecontainer ostreesetup part
		partition poweroff raid realm reboot repo reqpart rescue rhsm rootpw selinux services shutdown skipx
		snapshot sshkey sshpw syspurpose text timesource timezone unsupported_hardware updates upgrade url user vnc
		volgroup xconfig
		zerombr zfcp zipl`) {
		m[c] = struct{}{}
	}
	return m
}()
