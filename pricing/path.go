package pricing

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrAmbiguousPath is matched (errors.Is) by every *PathError.
var ErrAmbiguousPath = errors.New("ambiguous request path")

// PathError is a request path refused because servers read it in different ways, so that the
// upstream might serve it as a route the gateway did not price. Message is written for the
// client and never repeats the path.
type PathError struct {
	Message string
}

func (e *PathError) Error() string { return "ambiguous request path: " + e.Message }

// Is makes every PathError match ErrAmbiguousPath.
func (e *PathError) Is(target error) bool { return target == ErrAmbiguousPath }

func refuse(msg string) error { return &PathError{Message: msg} }

// canonicalSegments decodes the escaped request path raw and makes it canonical, or refuses it.
//
// Each "/"-separated part is percent-decoded on its own, so an encoded slash stays inside its
// segment. Empty and "." segments are dropped and ".." removes the segment before it (as
// path.Clean does, and after decoding, so "%2e%2e" is ".." too): the gateway forwards this
// canonical path, so every upstream sees the same segments. Refused, because upstreams disagree
// on what they mean (each message says why):
//
//   - control characters, raw or encoded (NUL, CR, LF, DEL, C1 controls): C servers stop at NUL;
//   - bytes that are not UTF-8, including overlong forms such as %C0%AE for ".";
//   - "\" raw or encoded: Windows and IIS read it as "/";
//   - "#" raw: a fragment has no place in a request target;
//   - encoded "/", "?", "#", "%" and ";": a proxy that passes the decoded path on (nginx's $uri)
//     turns them into structure, and a second decoding turns "%2571" into "q". An encoded slash
//     is allowed with Routing.AllowEncodedSlash;
//   - ";" (matrix parameters), which Tomcat, Spring and JAX-RS strip before routing and Express
//     does not; allowed with Routing.AllowMatrixParams;
//   - a segment ending in "." or " ": Windows and IIS drop those, so "quote." would be "quote".
//
// The segments are decoded; with the routing options one may hold "/" (an encoded slash the
// upstream keeps inside the segment) or ";params".
func canonicalSegments(raw string, rt Routing) ([]string, error) {
	if raw == "" || raw[0] != '/' {
		raw = "/" + raw // an empty path, or the asterisk form of OPTIONS *
	}
	segs := make([]string, 0, strings.Count(raw, "/"))
	for part := range strings.SplitSeq(raw[1:], "/") {
		dec, err := decodeSegment(part, rt)
		if err != nil {
			return nil, err
		}
		switch dec {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, dec)
		}
	}
	return segs, nil
}

// decodeSegment percent-decodes one raw segment and checks what it decodes to.
func decodeSegment(part string, rt Routing) (string, error) {
	if strings.IndexByte(part, '%') < 0 {
		if err := checkRawBytes(part, rt); err != nil {
			return "", err
		}
		return part, checkDecoded(part, rt)
	}
	var b strings.Builder
	b.Grow(len(part))
	for i := 0; i < len(part); i++ {
		c := part[i]
		if c != '%' {
			if err := checkRawByte(c, rt); err != nil {
				return "", err
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(part) || !isHex(part[i+1]) || !isHex(part[i+2]) {
			return "", refuse("a '%' that is not followed by two hex digits")
		}
		d := unhex(part[i+1])<<4 | unhex(part[i+2])
		if err := checkEncodedByte(d, rt); err != nil {
			return "", err
		}
		b.WriteByte(d)
		i += 2
	}
	dec := b.String()
	return dec, checkDecoded(dec, rt)
}

func checkRawBytes(s string, rt Routing) error {
	for i := 0; i < len(s); i++ {
		if err := checkRawByte(s[i], rt); err != nil {
			return err
		}
	}
	return nil
}

// checkRawByte judges a byte the client sent unencoded.
func checkRawByte(c byte, rt Routing) error {
	switch {
	case c < 0x20 || c == 0x7f:
		return refuse("a control character")
	case c == '\\':
		return refuse(`a backslash, which some servers read as "/"`)
	case c == '#' || c == '?':
		return refuse("a fragment or query delimiter inside the path")
	case c == ';' && !rt.AllowMatrixParams:
		return refuse(`matrix parameters (";"), which some servers strip before routing and others keep`)
	}
	return nil
}

// checkEncodedByte judges a byte the client sent percent-encoded.
func checkEncodedByte(d byte, rt Routing) error {
	switch {
	case d < 0x20 || d == 0x7f:
		return refuse("an encoded control character (such as %00)")
	case d == '/' && !rt.AllowEncodedSlash:
		return refuse("an encoded slash (%2F), which some servers decode into a path separator")
	case d == '\\':
		return refuse(`an encoded backslash (%5C), which some servers read as "/"`)
	case d == '%':
		return refuse("an encoded percent sign (%25): a second decoding would read another path")
	case d == '?' || d == '#':
		return refuse("an encoded query or fragment delimiter (%3F, %23), which some proxies decode into one")
	case d == ';':
		return refuse(`an encoded semicolon (%3B), which some servers decode and then strip as matrix parameters`)
	}
	return nil
}

// checkDecoded judges a decoded segment as a whole: valid UTF-8, no C1 control, and every name
// in it (split at an allowed encoded slash, before allowed matrix parameters) neither empty, a
// dot segment nor ending in "." or " ".
func checkDecoded(dec string, rt Routing) error {
	if !utf8.ValidString(dec) {
		return refuse("bytes that are not UTF-8 (an overlong or truncated sequence)")
	}
	for _, r := range dec {
		if r >= 0x80 && unicode.IsControl(r) {
			return refuse("a control character")
		}
	}
	if dec == "." || dec == ".." {
		return nil // resolved by the caller
	}
	name, _, hasParams := strings.Cut(dec, ";")
	if hasParams && strings.Contains(dec, "/") {
		return refuse("matrix parameters and an encoded slash in one segment")
	}
	if hasParams && (name == "" || name == "." || name == "..") {
		return refuse("matrix parameters on an empty or dot segment")
	}
	if !strings.Contains(name, "/") {
		return checkName(name)
	}
	for sub := range strings.SplitSeq(name, "/") {
		if sub == "" || sub == "." || sub == ".." {
			return refuse("an encoded slash next to an empty or dot segment")
		}
		if err := checkName(sub); err != nil {
			return err
		}
	}
	return nil
}

// checkName refuses a name ending in "." or " ".
func checkName(name string) error {
	if name == "" {
		return nil
	}
	if last := name[len(name)-1]; last == '.' || last == ' ' {
		return refuse("a segment ending in a dot or a space, which Windows servers drop")
	}
	return nil
}

// escapeSegments writes canonical segments as the escaped path the upstream receives: unreserved
// characters, sub-delimiters, ":" and "@" as they are, ";" as the matrix delimiter it can only
// be here, "/" inside a segment as %2F, and every other byte percent-encoded in upper case. The
// result is a pure function of what was priced.
func escapeSegments(segs []string) string {
	if len(segs) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		for i := 0; i < len(s); i++ {
			c := s[i]
			if keepRaw(c) {
				b.WriteByte(c)
				continue
			}
			const hexDigits = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

func keepRaw(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,=:@;", c) >= 0
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
