package vmtest

import (
	"context"
	"fmt"
	"time"
)

// SendKey presses one key combination on the VM's keyboard (QMP send-key),
// named by QEMU key codes ("qcodes"): for example "ctrl", "alt", "f2" to
// switch the Linux console to tty2, or "ret".
func (vm *VM) SendKey(ctx context.Context, qcodes ...string) error {
	if len(qcodes) == 0 {
		return fmt.Errorf("vmtest: SendKey: no key")
	}
	keys := make([]map[string]any, len(qcodes))
	for i, q := range qcodes {
		keys[i] = map[string]any{"type": "qcode", "data": q}
	}
	_, err := vm.qmp(ctx, "send-key", map[string]any{"keys": keys})
	return err
}

// TypeText types s on the VM's keyboard as on a US layout, one key press
// per character with a short pause (the guest's keyboard buffer is small).
// It accepts printable ASCII and '\n' (Enter); anything else is an error,
// before any key is sent.
func (vm *VM) TypeText(ctx context.Context, s string) error {
	seq := make([][]string, 0, len(s))
	for _, r := range s {
		k, ok := usKey(r)
		if !ok {
			return fmt.Errorf("vmtest: TypeText: no US key for %q", r)
		}
		seq = append(seq, k)
	}
	for _, k := range seq {
		if err := vm.SendKey(ctx, k...); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// usShifted maps the characters typed with Shift on a US keyboard to the
// key that carries them.
var usShifted = map[rune]string{
	'!': "1", '@': "2", '#': "3", '$': "4", '%': "5", '^': "6", '&': "7", '*': "8",
	'(': "9", ')': "0", '_': "minus", '+': "equal", '{': "bracket_left",
	'}': "bracket_right", '|': "backslash", ':': "semicolon", '"': "apostrophe",
	'<': "comma", '>': "dot", '?': "slash", '~': "grave_accent",
}

// usPlain maps the unshifted punctuation to its key.
var usPlain = map[rune]string{
	' ': "spc", '\n': "ret", '-': "minus", '=': "equal", '[': "bracket_left",
	']': "bracket_right", '\\': "backslash", ';': "semicolon", '\'': "apostrophe",
	',': "comma", '.': "dot", '/': "slash", '`': "grave_accent", '\t': "tab",
}

func usKey(r rune) ([]string, bool) {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return []string{string(r)}, true
	case r >= 'A' && r <= 'Z':
		return []string{"shift", string(r - 'A' + 'a')}, true
	}
	if k, ok := usPlain[r]; ok {
		return []string{k}, true
	}
	if k, ok := usShifted[r]; ok {
		return []string{"shift", k}, true
	}
	return nil, false
}
