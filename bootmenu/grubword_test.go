package bootmenu

import (
	"fmt"
	"strings"
)

// grubWords splits one line the way GRUB's script lexer does, far enough to
// check the renderer: single quotes are literal, double quotes allow
// \\ \" \$ escapes and $var expansion, a backslash outside quotes escapes
// the next byte. Unquoted ; & | < > and unquoted $ (expansion) are
// reported as errors, as are unterminated quotes. Words are returned
// without their quoting; "$" inside double quotes is kept as is.
func grubWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote at %d", i)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\\\"$", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case strings.IndexByte(";&|<>", c) >= 0:
			return nil, fmt.Errorf("unquoted %q at %d", c, i)
		case c == '$':
			return nil, fmt.Errorf("unquoted expansion at %d", i)
		case c == '#' && !inWord:
			return words, nil // comment
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
