package pricing

import (
	"errors"
	"fmt"
	"strings"
)

// pattern is a parsed path pattern.
type pattern struct {
	// segments are literal segments or "*" for exactly one segment.
	segments []string
	// rest is set by a final "**": any number of further segments may follow.
	rest bool
}

// ValidatePattern reports whether p is a usable path pattern: it starts with
// "/", has no empty, "." or ".." segments (they never survive CanonicalPath),
// uses "*" and "**" only as whole segments, "**" only as the last one, and
// contains no '%', '?', '#' or control characters (patterns match the decoded
// path, so write characters themselves rather than escapes).
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
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return pattern{}, fmt.Errorf("path pattern %q contains a control character", p)
		case c == '%':
			return pattern{}, fmt.Errorf("path pattern %q contains '%%': patterns match the decoded path, so write the character itself", p)
		case c == '?' || c == '#':
			return pattern{}, fmt.Errorf("path pattern %q contains %q: patterns match only the path, not a query or fragment", p, c)
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
		default:
			out.segments = append(out.segments, seg)
		}
	}
	return out, nil
}

// matches reports whether the canonical path p matches. p is rooted and clean,
// so its segments are non-empty except for the root path "/", which has none.
func (pt pattern) matches(p string) bool {
	rest := strings.TrimPrefix(p, "/")
	for _, want := range pt.segments {
		if rest == "" {
			return false
		}
		seg, tail, _ := strings.Cut(rest, "/")
		if want != "*" && want != seg {
			return false
		}
		rest = tail
	}
	return rest == "" || pt.rest
}

// covers reports whether pt matches every path that other matches.
func (pt pattern) covers(other pattern) bool {
	for i, want := range pt.segments {
		if i >= len(other.segments) {
			// other matches paths with only len(other.segments) segments,
			// which are too short for pt.
			return false
		}
		got := other.segments[i]
		if want != "*" && (got == "*" || got != want) {
			return false
		}
	}
	if len(other.segments) > len(pt.segments) || other.rest {
		return pt.rest
	}
	return true
}
