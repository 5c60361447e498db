package pricing

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pattern is a parsed path pattern.
type pattern struct {
	// segments are literal segments or "*" for exactly one segment.
	segments []string
	// rest is set by a final "**": any number of further segments may follow.
	rest bool
}

// ValidatePattern reports whether p is a usable path pattern: it starts with "/", is UTF-8, has
// no empty, "." or ".." segments (they never survive canonicalisation) and no segment ending in
// "." or " " (such request paths are refused), uses "*" and "**" only as whole segments, "**"
// only as the last one, and contains no '%', '?', '#', ';', '\' or control characters (patterns
// match the decoded path without matrix parameters, so write characters themselves rather than
// escapes).
func ValidatePattern(p string) error {
	_, err := parsePattern(p)
	return err
}

func parsePattern(p string) (pattern, error) {
	if p == "" {
		return pattern{}, errors.New("path pattern is empty")
	}
	if p[0] != '/' {
		return pattern{}, fmt.Errorf("path pattern %q must start with \"/\"", p)
	}
	if len(p) > 1024 {
		return pattern{}, errors.New("path pattern is longer than 1024 characters")
	}
	if !utf8.ValidString(p) {
		return pattern{}, fmt.Errorf("path pattern %q is not UTF-8", p)
	}
	for _, c := range p {
		switch {
		case unicode.IsControl(c):
			return pattern{}, fmt.Errorf("path pattern %q contains a control character", p)
		case c == '%':
			return pattern{}, fmt.Errorf("path pattern %q contains '%%': patterns match the decoded path, so write the character itself", p)
		case c == '?' || c == '#':
			return pattern{}, fmt.Errorf("path pattern %q contains %q: patterns match only the path, not a query or fragment", p, c)
		case c == ';':
			return pattern{}, fmt.Errorf("path pattern %q contains ';': patterns match the path without matrix parameters", p)
		case c == '\\':
			return pattern{}, fmt.Errorf("path pattern %q contains a backslash, which request paths may not hold", p)
		}
	}
	if p == "/" {
		return pattern{}, nil
	}
	parts := strings.Split(p[1:], "/")
	var out pattern
	for i, seg := range parts {
		last := i == len(parts)-1
		switch {
		case seg == "":
			return pattern{}, fmt.Errorf("path pattern %q has an empty segment", p)
		case seg == "." || seg == "..":
			return pattern{}, fmt.Errorf("path pattern %q has a %q segment", p, seg)
		case seg == "**":
			if !last {
				return pattern{}, fmt.Errorf("path pattern %q: \"**\" may only be the last segment", p)
			}
			out.rest = true
		case seg == "*":
			out.segments = append(out.segments, seg)
		case strings.Contains(seg, "*"):
			return pattern{}, fmt.Errorf("path pattern %q: \"*\" must be a whole segment", p)
		case strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " "):
			return pattern{}, fmt.Errorf("path pattern %q has a segment ending in a dot or a space, which request paths may not have", p)
		default:
			out.segments = append(out.segments, seg)
		}
	}
	return out, nil
}

// matches reports whether the canonical segments segs match, comparing literal segments
// case-insensitively when fold is set.
func (pt pattern) matches(segs []string, fold bool) bool {
	if len(segs) < len(pt.segments) || (len(segs) > len(pt.segments) && !pt.rest) {
		return false
	}
	for i, want := range pt.segments {
		if want != "*" && !sameSegment(want, segs[i], fold) {
			return false
		}
	}
	return true
}

// covers reports whether pt matches every path that other matches.
func (pt pattern) covers(other pattern, fold bool) bool {
	for i, want := range pt.segments {
		if i >= len(other.segments) {
			// other matches paths with only len(other.segments) segments,
			// which are too short for pt.
			return false
		}
		got := other.segments[i]
		if want != "*" && (got == "*" || !sameSegment(want, got, fold)) {
			return false
		}
	}
	if len(other.segments) > len(pt.segments) || other.rest {
		return pt.rest
	}
	return true
}

func sameSegment(a, b string, fold bool) bool {
	if !fold {
		return a == b
	}
	return foldEqual(a, b)
}

// foldEqual compares case-insensitively the way the most lenient upstreams route: two runes are
// equal when their upper cases fall in one Unicode simple-folding orbit. That covers Express
// (JavaScript's case-insensitive expressions), Go's EqualFold ("ſ" is "s", the Kelvin sign is
// "k") and ASP.NET's invariant upper-casing ("ı" is "i").
func foldEqual(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb && foldRune(ra) != foldRune(rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == b
}

// foldRune maps r to one representative of its class: the smallest rune in the simple-folding
// orbit of its upper case.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	up := unicode.ToUpper(r)
	least := up
	for f := unicode.SimpleFold(up); f != up; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}
