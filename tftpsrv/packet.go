package tftpsrv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// TFTP opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   uint16 = 1
	opWRQ   uint16 = 2
	opDATA  uint16 = 3
	opACK   uint16 = 4
	opERROR uint16 = 5
	opOACK  uint16 = 6
)

// option is one requested or acknowledged option. Names are lower-cased on
// parsing because RFC 2347 makes them case-insensitive.
type option struct {
	name, value string
}

// request is a parsed RRQ or WRQ.
type request struct {
	op   uint16
	name string // raw, as sent
	mode string // lower-cased
	opts []option
}

var errMalformed = errors.New("malformed request")

// parseRequest parses an RRQ or WRQ datagram. It never panics; anything that
// is not a well-formed request yields an error wrapping errMalformed. Options
// are matched case-insensitively, the first occurrence of a name wins, and a
// dangling option name without a value is ignored (some ROMs pad requests).
func parseRequest(b []byte) (request, error) {
	if len(b) < 2 {
		return request{}, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	op := binary.BigEndian.Uint16(b)
	if op != opRRQ && op != opWRQ {
		return request{}, fmt.Errorf("%w: opcode %d is not a request", errMalformed, op)
	}
	fields := bytes.Split(b[2:], []byte{0})
	// A well-formed request ends in NUL, so the last field is empty.
	if len(fields) < 3 || len(fields[len(fields)-1]) != 0 {
		return request{}, fmt.Errorf("%w: name or mode not NUL-terminated", errMalformed)
	}
	fields = fields[:len(fields)-1]
	r := request{op: op, name: string(fields[0]), mode: strings.ToLower(string(fields[1]))}
	if r.mode == "" {
		return request{}, fmt.Errorf("%w: empty mode", errMalformed)
	}
	seen := map[string]bool{}
	for i := 2; i+1 < len(fields); i += 2 {
		name := strings.ToLower(string(fields[i]))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		r.opts = append(r.opts, option{name: name, value: string(fields[i+1])})
	}
	return r, nil
}

// packRequest builds an RRQ or WRQ; the server uses it to hand vetted
// requests to the pin/tftp engine, tests use it as a client.
func packRequest(op uint16, name, mode string, opts []option) []byte {
	b := binary.BigEndian.AppendUint16(nil, op)
	b = append(append(b, name...), 0)
	b = append(append(b, mode...), 0)
	for _, o := range opts {
		b = append(append(b, o.name...), 0)
		b = append(append(b, o.value...), 0)
	}
	return b
}

// packError builds an ERROR packet.
func packError(code ErrorCode, msg string) []byte {
	b := binary.BigEndian.AppendUint16(nil, opERROR)
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(append(b, msg...), 0)
}

// packOACK builds an OACK packet.
func packOACK(opts []option) []byte {
	b := binary.BigEndian.AppendUint16(nil, opOACK)
	for _, o := range opts {
		b = append(append(b, o.name...), 0)
		b = append(append(b, o.value...), 0)
	}
	return b
}

// reply is a packet a client sends during a transfer.
type reply struct {
	op    uint16
	block uint16    // ACK
	code  ErrorCode // ERROR
	msg   string    // ERROR
}

// parseReply parses an ACK or ERROR; ok is false for anything else.
func parseReply(b []byte) (reply, bool) {
	if len(b) < 4 {
		return reply{}, false
	}
	r := reply{op: binary.BigEndian.Uint16(b)}
	switch r.op {
	case opACK:
		r.block = binary.BigEndian.Uint16(b[2:])
	case opERROR:
		r.code = ErrorCode(binary.BigEndian.Uint16(b[2:]))
		msg := b[4:]
		if i := bytes.IndexByte(msg, 0); i >= 0 {
			msg = msg[:i]
		}
		r.msg = string(msg)
	default:
		return reply{}, false
	}
	return r, true
}
