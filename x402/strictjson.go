package x402

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// The strict JSON rules every payment header and payload obeys, checked in one pass over the
// bytes without building tokens: valid JSON (RFC 8259, strings valid UTF-8), one value and
// nothing after it but whitespace, nesting at most maxJSONDepth, and no object whose keys repeat
// or differ only in case. encoding/json keeps the last of two equal keys and matches keys
// case-insensitively, so without these rules a payload could show one value to a signature
// check and another to settlement; invalid UTF-8 is refused because encoding/json turns every
// bad byte into U+FFFD, which would make two different keys equal.

// Member is one member of a JSON object: its key, decoded, and its value's raw bytes (a slice of
// the input, not a copy).
type Member struct {
	Key   string
	Value json.RawMessage
}

// CheckStrictJSON reports whether raw is one JSON value that obeys the strict rules. Failures
// wrap ErrBadJSON.
func CheckStrictJSON(raw []byte) error {
	s := strictScanner{data: raw}
	s.skipSpace()
	if err := s.value(); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return s.fail("trailing data after the JSON value")
	}
	return nil
}

// ObjectMembers checks raw with CheckStrictJSON and returns the members of the object it must
// be, in document order. The check and the split are one pass.
func ObjectMembers(raw []byte) ([]Member, error) {
	s := strictScanner{data: raw, members: make([]Member, 0, 8)}
	s.skipSpace()
	if s.peek() != '{' {
		if err := CheckStrictJSON(raw); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: must be a JSON object", ErrBadJSON)
	}
	if err := s.value(); err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return nil, s.fail("trailing data after the JSON value")
	}
	return s.members, nil
}

// CheckedObjectMembers splits an object that lies inside a document CheckStrictJSON accepted
// (a Member's value, say) without checking it again. It fails only when raw is not an object;
// on bytes that were never checked its result means nothing.
func CheckedObjectMembers(raw []byte) ([]Member, error) {
	s := strictScanner{data: raw}
	s.skipSpace()
	if s.peek() != '{' {
		return nil, fmt.Errorf("%w: must be a JSON object", ErrBadJSON)
	}
	s.pos++
	members := make([]Member, 0, 8)
	for {
		s.skipSpace()
		switch s.peek() {
		case '}', 0:
			return members, nil
		case ',':
			s.pos++
			s.skipSpace()
		}
		key, err := s.key()
		if err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.peek() != ':' { // only on bytes that were never checked
			return nil, s.fail("expected ':' after an object key")
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		s.skipChecked()
		members = append(members, Member{Key: key, Value: raw[start:s.pos]})
	}
}

// strictScanner walks JSON bytes. Every method leaves pos after what it read.
type strictScanner struct {
	data  []byte
	pos   int
	depth int
	keys  [][]byte // keys of the objects being read, innermost last
	// members, when not nil, collects the members of the outermost object as it is checked.
	members []Member
}

// keyIndexAbove is how many keys an object may have before duplicates are found through a map
// instead of comparing each new key with all earlier ones.
const keyIndexAbove = 16

func (s *strictScanner) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrBadJSON, fmt.Sprintf(format, args...), s.pos)
}

func (s *strictScanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *strictScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *strictScanner) value() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case s.pos >= len(s.data):
		return s.fail("unexpected end of input")
	default:
		return s.fail("unexpected character %q", c)
	}
}

// enter reads the opening bracket of an object or array and reports whether closing follows at
// once (the container is empty, and has been read whole).
func (s *strictScanner) enter(closing byte) (empty bool, err error) {
	if s.depth >= maxJSONDepth {
		return false, s.fail("nested deeper than %d", maxJSONDepth)
	}
	s.depth++
	s.pos++
	s.skipSpace()
	if s.peek() == closing {
		s.pos++
		s.depth--
		return true, nil
	}
	return false, nil
}

// more reads what follows a member or element: a comma (more follow) or the closing bracket.
func (s *strictScanner) more(closing byte) (bool, error) {
	s.skipSpace()
	switch s.peek() {
	case ',':
		s.pos++
		return true, nil
	case closing:
		s.pos++
		s.depth--
		return false, nil
	}
	return false, s.fail("expected ',' or '%c'", closing)
}

func (s *strictScanner) object() error {
	if empty, err := s.enter('}'); empty || err != nil {
		return err
	}
	first := len(s.keys)
	var index map[string]struct{} // built once the object has many keys
	defer func() { s.keys = s.keys[:first] }()
	for {
		s.skipSpace()
		if s.peek() != '"' {
			return s.fail("expected an object key")
		}
		key, err := s.keyBytes()
		if err != nil {
			return err
		}
		earlier := s.keys[first:]
		switch {
		case index != nil:
			f := foldKey(key)
			if _, dup := index[f]; dup {
				return s.fail("duplicate key %q", key)
			}
			index[f] = struct{}{}
		default:
			for _, k := range earlier {
				if bytes.EqualFold(k, key) {
					return s.fail("duplicate key %q", key)
				}
			}
			if len(earlier) == keyIndexAbove {
				index = make(map[string]struct{}, 2*keyIndexAbove)
				for _, k := range append(earlier, key) {
					index[foldKey(k)] = struct{}{}
				}
			}
		}
		s.keys = append(s.keys, key)
		s.skipSpace()
		if s.peek() != ':' {
			return s.fail("expected ':' after an object key")
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		if err := s.value(); err != nil {
			return err
		}
		if s.members != nil && s.depth == 1 {
			s.members = append(s.members, Member{Key: string(key), Value: s.data[start:s.pos]})
		}
		if more, err := s.more('}'); !more || err != nil {
			return err
		}
	}
}

func (s *strictScanner) array() error {
	if empty, err := s.enter(']'); empty || err != nil {
		return err
	}
	for {
		s.skipSpace()
		if err := s.value(); err != nil {
			return err
		}
		if more, err := s.more(']'); !more || err != nil {
			return err
		}
	}
}

// str reads a string and returns the span between its quotes and whether it has escapes.
func (s *strictScanner) str() (inner []byte, escaped bool, err error) {
	s.pos++ // opening quote
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			inner = s.data[start:s.pos]
			s.pos++
			return inner, escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return nil, false, err
			}
		case c < 0x20:
			return nil, false, s.fail("control character in a string")
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, s.fail("invalid UTF-8 in a string")
			}
			s.pos += size
		}
	}
	return nil, false, s.fail("unterminated string")
}

func (s *strictScanner) escape() error {
	s.pos++ // backslash
	switch s.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos++
		return nil
	case 'u':
		if s.pos+5 > len(s.data) {
			return s.fail("truncated \\u escape")
		}
		for _, h := range s.data[s.pos+1 : s.pos+5] {
			if !isHexDigit(h) {
				return s.fail("bad \\u escape")
			}
		}
		s.pos += 5
		return nil
	default:
		return s.fail("bad escape in a string")
	}
}

// keyBytes reads an object key and returns it decoded (a slice of the input when it has no
// escapes).
func (s *strictScanner) keyBytes() ([]byte, error) {
	inner, escaped, err := s.str()
	if err != nil || !escaped {
		return inner, err
	}
	var k string
	if err := json.Unmarshal(s.data[s.pos-len(inner)-2:s.pos], &k); err != nil {
		return nil, s.fail("bad key: %v", err)
	}
	return []byte(k), nil
}

func (s *strictScanner) key() (string, error) {
	b, err := s.keyBytes()
	return string(b), err
}

func (s *strictScanner) number() error {
	start := s.pos
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail("bad number")
	}
	if s.peek() == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.fail("bad number")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if s.digits() == 0 {
			return s.fail("bad number")
		}
	}
	if s.pos == start {
		return s.fail("bad number")
	}
	return nil
}

// skipChecked moves past one value known to be valid JSON: strings to their closing quote,
// containers to their matching bracket, anything else to the next delimiter.
func (s *strictScanner) skipChecked() {
	depth := 0
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch c {
		case '"':
			s.pos++
			for s.pos < len(s.data) && s.data[s.pos] != '"' {
				if s.data[s.pos] == '\\' {
					s.pos++
				}
				s.pos++
			}
			s.pos++
		case '{', '[':
			depth++
			s.pos++
		case '}', ']':
			if depth == 0 {
				return
			}
			depth--
			s.pos++
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return
			}
			s.pos++
		default:
			s.pos++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			break
		}
	}
	// Unchecked bytes (an unterminated string, a trailing backslash) can step past the end.
	s.pos = min(s.pos, len(s.data))
}

func (s *strictScanner) digits() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

func (s *strictScanner) literal(word string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return s.fail("bad literal")
	}
	s.pos += len(word)
	return nil
}

func isHexDigit(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// foldKey maps a key to one representative of its case-folding class, so that two keys are
// bytes.EqualFold-equal exactly when their foldKeys are equal: each rune becomes the smallest
// rune of its simple-folding orbit.
func foldKey(k []byte) string {
	out := make([]rune, 0, len(k))
	for _, r := range string(k) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		out = append(out, least)
	}
	return string(out)
}
