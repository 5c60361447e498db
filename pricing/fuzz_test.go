package pricing

import (
	"math/big"
	"path"
	"strings"
	"testing"
)

// referenceMatch is a deliberately naive matcher used to check the real one:
// split both sides into segments and compare them one by one.
func referenceMatch(pattern, canonical string) bool {
	var pat, segs []string
	if pattern != "/" {
		pat = strings.Split(pattern[1:], "/")
	}
	if canonical != "/" {
		segs = strings.Split(canonical[1:], "/")
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
		if pat[i] != "*" && pat[i] != segs[i] {
			return false
		}
	}
	return true
}

func FuzzMatch(f *testing.F) {
	seeds := [][3]string{
		{"GET", "/v1/quote", "/v1/quote/"},
		{"GET", "/v1/quote", "//v1/../v1/quote"},
		{"*", "/v1/items/*", "/v1/items/42"},
		{"", "/v1/files/**", "/v1/files"},
		{"", "/v1/files/**", "/v1/files/a/b"},
		{"POST", "/**", "/"},
		{"GET", "/", ""},
		{"GET", "/v1/**/x", "/v1/a/x"},
		{"GET", "/a*", "/a"},
		{"G ET", "/a", "/a"},
		{"get", "/a/*/c/**", "/a/b/c/d/e"},
		{"GET", "/%", "/%"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], "HEAD", s[2])
	}
	f.Fuzz(func(t *testing.T, ruleMethod, pattern, reqMethod, reqPath string) {
		table, err := New([]Rule{{Method: ruleMethod, Path: pattern, Price: big.NewInt(7)}})
		if err != nil {
			if ValidatePattern(pattern) == nil && ValidateMethod(ruleMethod) == nil {
				t.Fatalf("New rejected a valid method %q and pattern %q: %v", ruleMethod, pattern, err)
			}
			return
		}
		canonical := CanonicalPath(reqPath)
		if canonical != path.Clean("/"+reqPath) || CanonicalPath(canonical) != canonical {
			t.Fatalf("CanonicalPath(%q) = %q is not the cleaned rooted path", reqPath, canonical)
		}
		got, ok := table.Match(reqMethod, reqPath)
		want := referenceMatch(pattern, canonical) &&
			methodMatches(normalizeMethod(ruleMethod), normalizeReqMethod(reqMethod))
		if ok != want {
			t.Fatalf("rule %q %q, request %q %q (canonical %q): matched=%v, reference says %v",
				ruleMethod, pattern, reqMethod, reqPath, canonical, ok, want)
		}
		if ok && (got.Path != pattern || got.Price.Int64() != 7) {
			t.Fatalf("matched rule %+v is not the configured rule", got)
		}
	})
}

func normalizeMethod(m string) string {
	m = strings.ToUpper(m)
	if m == AnyMethod {
		return ""
	}
	return m
}

func normalizeReqMethod(m string) string {
	if m == "" {
		return "GET"
	}
	return strings.ToUpper(m)
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
		if !parsed.matches(CanonicalPath(example)) {
			t.Fatalf("pattern %q does not match its own example %q", p, example)
		}
		if CanonicalPath(example) != example {
			t.Fatalf("pattern %q accepted but its literal form %q is not canonical", p, example)
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
		p := CanonicalPath(reqPath)
		if pa.covers(pb) && pb.matches(p) && !pa.matches(p) {
			t.Fatalf("%q covers %q, yet %q matches only the second", a, b, p)
		}
		// The pattern's own example path must be matched by anything covering it.
		example := strings.ReplaceAll(strings.TrimSuffix(strings.TrimSuffix(b, "**"), "/"), "*", "x")
		if example == "" {
			example = "/"
		}
		if pa.covers(pb) && !pa.matches(CanonicalPath(example)) {
			t.Fatalf("%q covers %q but not its example %q", a, b, example)
		}
	})
}
