package isosrc

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
)

// ISO 9660 constants used by the record readers.
const (
	sectorSize = 2048

	flagHidden     = 0x01
	flagDirectory  = 0x02
	flagAssociated = 0x04
	flagMultiExtnt = 0x80

	maxNameBytes = 1024 // NM components joined
	maxLinkBytes = 4096 // SL components joined
	maxCEHops    = 16   // continuation areas per record
)

// dirRecord is one decoded ISO 9660 directory record with its Rock Ridge
// (or Joliet) view applied. It is what the index is built from.
type dirRecord struct {
	rawName  []byte // file identifier as stored
	name     string // final name: RR NM, Joliet or plain ISO name
	lba      uint32
	size     uint32
	flags    byte
	mtime    time.Time
	mode     fs.FileMode // from RR PX; 0 when absent
	hasMode  bool
	link     string // RR SL target; "" when not a symlink
	isLink   bool
	childLBA uint32 // RR CL: relocated directory location
	hasCL    bool
	relocted bool // RR RE: this directory is the relocated copy, hide it
	dot      bool // "." (0x00) record
	dotdot   bool // ".." (0x01) record
	hasSP    bool // SUSP SP entry seen (root "." only)
	spSkip   int
	hasRR    bool // ER / RR / PX seen
}

// nameMode selects how record names are decoded.
type nameMode int

const (
	namesPlain nameMode = iota
	namesRockRidge
	namesJoliet
)

// ceReader reads SUSP continuation areas; it is bounded by the caller.
type ceReader func(lba, off, length uint32) ([]byte, error)

// parseRecord decodes the directory record at the start of b. It returns the
// record and its length. susp enables System Use Sharing Protocol parsing
// with skip bytes skipped at the start of each system use area.
func parseRecord(b []byte, mode nameMode, susp bool, skip int, ce ceReader) (dirRecord, int, error) {
	var r dirRecord
	if len(b) < 34 {
		return r, 0, fmt.Errorf("directory record: %d bytes, need 34", len(b))
	}
	n := int(b[0])
	if n < 34 || n > len(b) {
		return r, 0, fmt.Errorf("directory record length %d out of range", n)
	}
	b = b[:n]
	r.lba = binary.LittleEndian.Uint32(b[2:6])
	r.size = binary.LittleEndian.Uint32(b[10:14])
	r.mtime = recordTime(b[18:25])
	r.flags = b[25]
	nl := int(b[32])
	if 33+nl > n {
		return r, 0, fmt.Errorf("directory record name length %d exceeds record length %d", nl, n)
	}
	r.rawName = b[33 : 33+nl]
	if nl == 1 && r.rawName[0] == 0 {
		r.dot = true
	} else if nl == 1 && r.rawName[0] == 1 {
		r.dotdot = true
	}
	switch mode {
	case namesJoliet:
		r.name = jolietName(r.rawName)
	default:
		r.name = plainName(r.rawName, r.flags&flagDirectory != 0)
	}
	su := 33 + nl
	if nl%2 == 0 {
		su++ // padding byte
	}
	if susp && su < n {
		area := b[su:]
		if skip > 0 {
			if skip >= len(area) {
				area = nil
			} else {
				area = area[skip:]
			}
		}
		if err := r.parseSUSP(area, mode == namesRockRidge, ce); err != nil {
			return r, 0, err
		}
	}
	return r, n, nil
}

// parseSUSP walks the system use entries of one record, following CE
// continuation areas a bounded number of times.
func (r *dirRecord) parseSUSP(area []byte, rr bool, ce ceReader) error {
	var nm, sl []byte
	nmDone, slDone := false, false
	slJoin := false
	hops := 0
	for area != nil {
		var next []byte
		for len(area) >= 4 {
			sig := string(area[0:2])
			l := int(area[2])
			if l < 4 || l > len(area) {
				break // padding or damage; SUSP says stop
			}
			e := area[:l]
			area = area[l:]
			switch sig {
			case "SP":
				if l >= 7 && e[4] == 0xBE && e[5] == 0xEF {
					r.hasSP = true
					r.spSkip = int(e[6])
				}
			case "ST":
				area = nil
			case "CE":
				if l >= 28 && ce != nil {
					if hops >= maxCEHops {
						return fmt.Errorf("rock ridge: more than %d continuation areas", maxCEHops)
					}
					hops++
					blk := binary.LittleEndian.Uint32(e[4:8])
					off := binary.LittleEndian.Uint32(e[12:16])
					ln := binary.LittleEndian.Uint32(e[20:24])
					var err error
					next, err = ce(blk, off, ln)
					if err != nil {
						return err
					}
				}
			case "ER", "RR":
				r.hasRR = true
			case "PX":
				r.hasRR = true
				if l >= 12 {
					r.mode = posixMode(binary.LittleEndian.Uint32(e[4:8]))
					r.hasMode = true
				}
			case "NM":
				if !rr || l < 5 || nmDone {
					continue
				}
				flags := e[4]
				if flags&0x06 != 0 { // current or parent: not a real name
					nmDone = true
					continue
				}
				if len(nm)+l-5 > maxNameBytes {
					return fmt.Errorf("rock ridge: name longer than %d bytes", maxNameBytes)
				}
				nm = append(nm, e[5:]...)
				if flags&0x01 == 0 {
					nmDone = true
				}
			case "SL":
				if !rr || l < 5 || slDone {
					continue
				}
				r.isLink = true
				cont := e[4]&0x01 != 0
				comps := e[5:]
				for len(comps) >= 2 {
					cf, cl := comps[0], int(comps[1])
					if 2+cl > len(comps) {
						return fmt.Errorf("rock ridge: symlink component overruns its entry")
					}
					part := comps[2 : 2+cl]
					comps = comps[2+cl:]
					var piece string
					switch {
					case cf&0x02 != 0:
						piece = "."
					case cf&0x04 != 0:
						piece = ".."
					case cf&0x08 != 0:
						piece = "/"
					default:
						piece = string(part)
					}
					if piece == "/" {
						if len(sl) == 0 {
							sl = append(sl, '/')
						}
					} else {
						if len(sl) > 0 && !slJoin && sl[len(sl)-1] != '/' {
							sl = append(sl, '/')
						}
						sl = append(sl, piece...)
					}
					// A component with the continue flag goes on in the
					// next component without a separator.
					slJoin = cf&0x01 != 0
					if len(sl) > maxLinkBytes {
						return fmt.Errorf("rock ridge: symlink target longer than %d bytes", maxLinkBytes)
					}
				}
				if !cont {
					slDone = true
				}
			case "CL":
				if rr && l >= 12 {
					r.childLBA = binary.LittleEndian.Uint32(e[4:8])
					r.hasCL = true
				}
			case "RE":
				if rr {
					r.relocted = true
				}
			}
		}
		area = next
	}
	if rr && len(nm) > 0 {
		r.name = string(nm)
	}
	if rr && r.isLink {
		r.link = string(sl)
	}
	return nil
}

// posixMode converts a Rock Ridge PX st_mode to an fs.FileMode.
func posixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o100000:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// plainName turns an ISO 9660 identifier into a name: version ";1" and the
// trailing dot of extension-less names are dropped, nothing else.
func plainName(b []byte, dir bool) string {
	s := string(b)
	if dir {
		return s
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// jolietName decodes a UCS-2/UTF-16 big-endian Joliet identifier.
func jolietName(b []byte) string {
	if len(b) == 1 && (b[0] == 0 || b[0] == 1) {
		return string(b)
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.BigEndian.Uint16(b[i:]))
	}
	s := string(utf16.Decode(u))
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// recordTime decodes the 7-byte directory record date. Damaged dates give
// the zero time rather than an error: a date never decides anything here.
func recordTime(b []byte) time.Time {
	if b[0] == 0 && b[1] == 0 {
		return time.Time{}
	}
	mon, day := int(b[1]), int(b[2])
	if mon < 1 || mon > 12 || day < 1 || day > 31 || b[3] > 23 || b[4] > 59 || b[5] > 59 {
		return time.Time{}
	}
	off := int(int8(b[6])) * 15 * 60
	loc := time.FixedZone("", off)
	return time.Date(1900+int(b[0]), time.Month(mon), day, int(b[3]), int(b[4]), int(b[5]), 0, loc).UTC()
}

// validName reports whether a decoded name can appear in an fs.FS path.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	return !strings.ContainsAny(s, "/\x00")
}
