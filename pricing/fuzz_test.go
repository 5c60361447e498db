package pricing

import (
	"errors"
	"math/big"
	"net/url"
	"path"
	"strings"
	"testing"
)

// referenceMatch is a deliberately naive matcher used to check the real one:
// split both sides into segments and compare them one by one, case-insensitively
// unless exact, by upper-casing both and folding.
func referenceMatch(pattern string, segs []string, exact bool) bool {
	var pat []string
	if pattern != "/" {
		pat = strings.Split(pattern[1:], "/")
	}
	if n := len(pat); n > 0 && pat[n-1] == "**" {
		pat = pat[:n-1]
		if len(segs) < len(pat) {
			return false
		}
		segs = segs[:len(pat)]
	}
	if len(pat) != len(segs) {
		return false
	}
	for i := range pat {
		same := pat[i] == segs[i] || (!exact && strings.EqualFold(strings.ToUpper(pat[i]), strings.ToUpper(segs[i])))
		if pat[i] != "*" && !same {
			return false
		}
	}
	return true
}

// splitPath turns a canonical decoded path into segments.
func splitPath(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

func FuzzRoute(f *testing.F) {
	seeds := [][3]string{
		{"GET", "/v1/quote", "/v1/quote/"},
		{"GET", "/v1/quote", "//v1/../v1/quote"},
		{"GET", "/v1/quote", "/V1/%51uote"},
		{"GET", "/v1/quote", "/v1/quote;x"},
		{"GET", "/v1/quote", "/v1/quote%00"},
		{"GET", "/v1/quote", "/v1%2Fquote"},
		{"GET", "/v1/quote", "/v1/free/..;/quote"},
		{"*", "/v1/items/*", "/v1/items/42"},
		{"", "/v1/files/**", "/v1/files"},
		{"", "/v1/files/**", "/v1/files/a%2Fb/c"},
		{"POST", "/**", "/"},
		{"GET", "/", ""},
		{"GET", "/ſ", "/S"},
		{"get", "/a/*/c/**", "/a/b/c/d/e"},
		{"GET", "/%", "/%"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], "HEAD", s[2], uint8(0))
		f.Add(s[0], s[1], "GET", s[2], uint8(7))
	}
	f.Fuzz(func(t *testing.T, ruleMethod, pattern, reqMethod, rawPath string, options uint8) {
		rt := Routing{CaseSensitive: options&1 != 0, AllowEncodedSlash: options&2 != 0,
			AllowMatrixParams: options&4 != 0, DenyUnlisted: options&8 != 0}
		table, err := NewWithRouting([]Rule{{Method: ruleMethod, Path: pattern, Price: big.NewInt(7)}}, rt)
		if err != nil {
			if ValidatePattern(pattern) == nil && ValidateMethod(ruleMethod) == nil {
				t.Fatalf("New rejected a valid method %q and pattern %q: %v", ruleMethod, pattern, err)
			}
			return
		}
		r, err := table.Route(reqMethod, rawPath)
		var pe *PathError
		switch {
		case errors.As(err, &pe):
			if r.Listed || pe.Message == "" {
				t.Fatalf("a refused path came with a route %+v", r)
			}
			return
		case err != nil && !errors.Is(err, ErrUnlisted):
			t.Fatalf("Route(%q): unexpected error %v", rawPath, err)
		case errors.Is(err, ErrUnlisted) && (!rt.DenyUnlisted || r.Listed):
			t.Fatalf("Route(%q): ErrUnlisted without DenyUnlisted, or for a listed route", rawPath)
		}
		// What is forwarded is canonical, decodes to the priced path, and prices the same again.
		if dec, err := url.PathUnescape(r.RawPath); err != nil || dec != r.Path {
			t.Fatalf("Route(%q): RawPath %q does not decode to Path %q", rawPath, r.RawPath, r.Path)
		}
		again, err2 := table.Route(reqMethod, r.RawPath)
		if err2 != nil && !errors.Is(err2, ErrUnlisted) || again.RawPath != r.RawPath || again.Listed != r.Listed {
			t.Fatalf("Route(%q) forwards %q, which routes as %+v, %v", rawPath, r.RawPath, again, err2)
		}
		if clean := path.Clean(r.Path); clean != r.Path && !rt.AllowEncodedSlash {
			t.Fatalf("Route(%q) = %q, not clean", rawPath, r.Path)
		}
		// The reference: any reading an upstream may give the path that matches the rule.
		segs := splitPath(r.Path)
		if rt.AllowEncodedSlash {
			segs = nil
			for _, s := range strings.Split(r.RawPath[1:], "/") {
				d, _ := url.PathUnescape(s)
				if d != "" || r.RawPath != "/" {
					segs = append(segs, d)
				}
			}
		}
		want := false
		for _, reading := range readingsOf(segs) {
			want = want || referenceMatch(pattern, reading, rt.CaseSensitive)
		}
		ruleM := strings.ToUpper(ruleMethod)
		if ruleM == AnyMethod {
			ruleM = ""
		}
		want = want && methodMatches(ruleM, normalizeMethod(reqMethod))
		if r.Listed != want {
			t.Fatalf("rule %q %q, request %q %q (%+v): listed=%v, reference says %v",
				ruleMethod, pattern, reqMethod, rawPath, rt, r.Listed, want)
		}
		if r.Listed && (r.Rule.Path != pattern || r.Rule.Price.Int64() != 7) {
			t.Fatalf("matched rule %+v is not the configured rule", r.Rule)
		}
	})
}

// readingsOf is the reference's list of readings: as is, split at "/" inside segments, without
// ";params", and both.
func readingsOf(segs []string) [][]string {
	split, stripped, both := []string{}, []string{}, []string{}
	for _, s := range segs {
		split = append(split, strings.Split(s, "/")...)
		name, _, _ := strings.Cut(s, ";")
		stripped = append(stripped, name)
		both = append(both, strings.Split(name, "/")...)
	}
	return [][]string{segs, split, stripped, both}
}

func FuzzValidatePattern(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/*", "/a/**", "/**", "a", "", "//", "/a/", "/a/**/b", "/*/*", "/a/.", "/\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		parsed, err := parsePattern(p)
		if err != nil {
			return
		}
		// Every accepted pattern matches the path it spells, with wildcards
		// replaced by a concrete segment: patterns can never be unreachable.
		example := strings.ReplaceAll(strings.TrimSuffix(strings.TrimSuffix(p, "**"), "/"), "*", "x")
		if example == "" {
			example = "/"
		}
		r, err := (&Table{routing: Routing{CaseSensitive: true}}).Route("GET", url.PathEscape(example))
		r2, err2 := (&Table{}).Route("GET", example)
		if err != nil && err2 != nil {
			t.Fatalf("pattern %q accepted but its example %q is refused: %v", p, example, err)
		}
		if err != nil {
			r = r2
		}
		if r.Path != example {
			t.Fatalf("pattern %q accepted but its literal form %q is not canonical (%q)", p, example, r.Path)
		}
		if !parsed.matches(splitPath(example), false) {
			t.Fatalf("pattern %q does not match its own example %q", p, example)
		}
	})
}

// FuzzCovers checks the unreachable-rule analysis against matching: when one
// pattern covers another, every path the second matches, the first matches.
func FuzzCovers(f *testing.F) {
	f.Add("/a/**", "/a/*/c", "/a/b/c")
	f.Add("/*/b", "/a/b", "/a/b")
	f.Add("/**", "/", "/")
	f.Add("/a/*", "/a/**", "/a")
	f.Fuzz(func(t *testing.T, a, b, reqPath string) {
		pa, errA := parsePattern(a)
		pb, errB := parsePattern(b)
		if errA != nil || errB != nil {
			return
		}
		r, err := (&Table{}).Route("GET", reqPath)
		if err != nil {
			return
		}
		for _, fold := range []bool{false, true} {
			p := splitPath(r.Path)
			if pa.covers(pb, fold) && pb.matches(p, fold) && !pa.matches(p, fold) {
				t.Fatalf("%q covers %q (fold %v), yet %q matches only the second", a, b, fold, r.Path)
			}
		}
		// The pattern's own example path must be matched by anything covering it.
		example := strings.ReplaceAll(strings.TrimSuffix(strings.TrimSuffix(b, "**"), "/"), "*", "x")
		if example == "" {
			example = "/"
		}
		if pa.covers(pb, false) && !pa.matches(splitPath(example), false) {
			t.Fatalf("%q covers %q but not its example %q", a, b, example)
		}
	})
}
