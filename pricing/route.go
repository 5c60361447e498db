package pricing

import (
	"errors"
	"math/big"
	"strings"
)

// Routing says how request paths are read. The zero value is the safe default.
type Routing struct {
	// CaseSensitive matches literal pattern segments exactly. By default they match in any
	// letter case, because Express and ASP.NET route that way: an upstream of that kind would
	// serve /V1/QUOTE as /v1/quote.
	CaseSensitive bool
	// AllowEncodedSlash accepts %2F, for upstreams that keep it inside a segment (identifiers
	// such as "group%2Fproject"). The path is priced both ways, with the slash inside its
	// segment and as a separator, and the higher price applies.
	AllowEncodedSlash bool
	// AllowMatrixParams accepts ";params" at the end of a segment, for upstreams that take
	// matrix parameters (Tomcat, Spring, JAX-RS). The path is priced both with the parameters
	// and without them (what those servers route on), and the higher price applies.
	AllowMatrixParams bool
	// DenyUnlisted refuses a path no rule matches (Route returns ErrUnlisted, the gateway
	// answers 404) instead of passing it upstream free.
	DenyUnlisted bool
}

// ErrUnlisted is returned by Route for a path no rule matches when Routing.DenyUnlisted is set.
var ErrUnlisted = errors.New("no route matches the request")

// Route is a request resolved against a Table.
type Route struct {
	// Rule is the rule that prices the request; its Price is a copy the caller may keep. When
	// Listed is false it is the zero Rule.
	Rule   Rule
	Listed bool
	// Path and RawPath are the canonical path, decoded and escaped, that was priced: the
	// request must reach the upstream with exactly this path (http.Request.URL.Path and
	// URL.RawPath). Segments keep the letter case the client wrote.
	Path, RawPath string
}

// Route reads the escaped request path rawPath (as the client sent it: url.URL.EscapedPath, or
// RawPath when set) and prices it for method.
//
// A path that servers read in different ways is refused with a *PathError (see
// canonicalSegments). The others are made canonical (dot segments resolved, empty ones
// dropped) and matched under every reading an upstream may give them: the segments as they
// stand and, unless CaseSensitive, case-insensitively; with AllowEncodedSlash, split at encoded
// slashes too; with AllowMatrixParams, without the ";params" too. Each reading takes its first
// matching rule, and the highest price among them applies (ties go to the exact reading), so no
// spelling of a priced route is cheaper than the route. Only when no reading matches is the
// path unlisted: free, or ErrUnlisted with DenyUnlisted.
func (t *Table) Route(method, rawPath string) (Route, error) {
	var rt Routing
	if t != nil {
		rt = t.routing
	}
	segs, err := canonicalSegments(rawPath, rt)
	if err != nil {
		return Route{}, err
	}
	route := Route{Path: "/" + strings.Join(segs, "/"), RawPath: escapeSegments(segs)}
	best := t.bestRule(normalizeMethod(method), readings(segs))
	if best == nil {
		if rt.DenyUnlisted {
			return route, ErrUnlisted
		}
		return route, nil
	}
	route.Rule, route.Listed = best.rule, true
	route.Rule.Price = new(big.Int).Set(best.rule.Price)
	return route, nil
}

// bestRule returns the highest-priced first match among the readings, or nil.
func (t *Table) bestRule(method string, readings [][]string) *compiledRule {
	if t == nil {
		return nil
	}
	folds := []bool{false, true}
	if t.routing.CaseSensitive {
		folds = folds[:1]
	}
	var best *compiledRule
	for _, segs := range readings {
		for _, fold := range folds {
			c := t.firstMatch(method, segs, fold)
			if c != nil && (best == nil || c.rule.Price.Cmp(best.rule.Price) > 0) {
				best = c
			}
		}
	}
	return best
}

func (t *Table) firstMatch(method string, segs []string, fold bool) *compiledRule {
	for i := range t.rules {
		c := &t.rules[i]
		if methodMatches(c.method, method) && c.pattern.matches(segs, fold) {
			return c
		}
	}
	return nil
}

// readings returns the ways an upstream may split the canonical segments: as they stand, at
// allowed encoded slashes, without allowed matrix parameters, and both (Tomcat drops ";params"
// and, when told to, decodes %2F). canonicalSegments refused every case where these would need
// resolving again (a dot or empty name next to "%2F" or before ";") and segments holding both,
// so the order of the two edits does not matter.
func readings(segs []string) [][]string {
	hasSlash, hasParams := false, false
	for _, s := range segs {
		hasSlash = hasSlash || strings.Contains(s, "/")
		hasParams = hasParams || strings.Contains(s, ";")
	}
	out := [][]string{segs}
	if hasSlash {
		out = append(out, rewrite(segs, true, false))
	}
	if hasParams {
		out = append(out, rewrite(segs, false, true))
	}
	if hasSlash && hasParams {
		out = append(out, rewrite(segs, true, true))
	}
	return out
}

// rewrite splits segments at "/" and drops their ";params", as asked.
func rewrite(segs []string, split, strip bool) []string {
	out := make([]string, 0, len(segs)+1)
	for _, s := range segs {
		if strip {
			s, _, _ = strings.Cut(s, ";")
		}
		if split {
			out = append(out, strings.Split(s, "/")...)
			continue
		}
		out = append(out, s)
	}
	return out
}

// normalizeMethod upper-cases a request method; "" is GET, as net/http reads it.
func normalizeMethod(m string) string {
	if m == "" {
		return "GET"
	}
	return strings.ToUpper(m)
}
