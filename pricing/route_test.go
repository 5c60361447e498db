package pricing

import (
	"errors"
	"strings"
	"testing"
)

func routingTable(t *testing.T, rt Routing, rules ...Rule) *Table {
	t.Helper()
	table, err := NewWithRouting(rules, rt)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestRouteRefusesAmbiguousPaths: a path some upstream reads differently from another is
// refused, whatever the table holds, with a message that says why and never repeats the path.
func TestRouteRefusesAmbiguousPaths(t *testing.T) {
	table := routingTable(t, Routing{}, rule("GET", "/v1/quote", 1))
	for raw, why := range map[string]string{
		"/v1/quote%00":         "control character",
		"/v1/quote%0A":         "control character",
		"/v1/quote%7f":         "control character",
		"/v1/quote\x01":        "control character",
		"/v1/quote%C2%85":      "control character",
		"/v1/quote%ff":         "not UTF-8",
		"/v1/quote\xff":        "not UTF-8",
		"/v1/qu%C0%AEte":       "not UTF-8",
		"/v1/%ED%A0%80":        "not UTF-8", // a surrogate
		"/v1%2Fquote":          "encoded slash",
		"/v1%2fquote":          "encoded slash",
		"/v1%5Cquote":          "encoded backslash",
		"/v1\\quote":           "backslash",
		"/v1/%2571uote":        "encoded percent",
		"/v1/quote%3Fx":        "query or fragment",
		"/v1/quote%23x":        "query or fragment",
		"/v1/quote#x":          "fragment",
		"/v1/quote?x":          "query",
		"/v1/quote;x":          "matrix parameters",
		"/v1/quote%3Bx":        "encoded semicolon",
		"/v1/quote.":           "ending in a dot",
		"/v1/quote%2e":         "ending in a dot",
		"/v1/quote%20":         "ending in a dot or a space",
		"/v1/quote..":          "ending in a dot",
		"/v1/.../quote":        "ending in a dot",
		"/v1/quote%":           "two hex digits",
		"/v1/quote%4":          "two hex digits",
		"/v1/quote%zz":         "two hex digits",
		"/v1/quote%u0071":      "two hex digits",
		"/v1/free/..;/quote":   "matrix parameters",
		"/v1/quote/%2e%2e%2f/": "encoded slash",
	} {
		r, err := table.Route("GET", raw)
		var pe *PathError
		if !errors.As(err, &pe) || !errors.Is(err, ErrAmbiguousPath) || r.Listed {
			t.Errorf("Route(%q) = %+v, %v; want a PathError", raw, r, err)
			continue
		}
		if !strings.Contains(pe.Message, why) || strings.Contains(pe.Message, "quote") {
			t.Errorf("Route(%q): message %q should say %q and not repeat the path", raw, pe.Message, why)
		}
	}
}

// TestRouteCaseSensitive: with routing.caseSensitive, /V1/QUOTE is another path.
func TestRouteCaseSensitive(t *testing.T) {
	table := routingTable(t, Routing{CaseSensitive: true}, rule("GET", "/v1/quote", 1), rule("GET", "/v1/Quote", 2))
	for raw, want := range map[string]int64{"/v1/quote": 1, "/v1/Quote": 2, "/V1/QUOTE": -1} {
		if got := priceOf(t, table, "GET", raw); got != want {
			t.Errorf("%s: %d, want %d", raw, got, want)
		}
	}
	// The same two rules collide when paths fold.
	if _, err := New([]Rule{rule("GET", "/v1/quote", 1), rule("GET", "/v1/Quote", 2)}); err == nil {
		t.Fatal("/v1/Quote after /v1/quote must be unreachable when paths match in any case")
	}
}

// TestRouteFoldsLikeLenientUpstreams: the folding covers what Express, Go's EqualFold and
// ASP.NET's invariant upper-casing take as equal.
func TestRouteFoldsLikeLenientUpstreams(t *testing.T) {
	table := routingTable(t, Routing{}, rule("GET", "/v1/status", 1), rule("GET", "/v1/kit", 2), rule("GET", "/v1/list", 3))
	for raw, want := range map[string]int64{
		"/v1/STATUS":         1,
		"/v1/%C5%BFtatus":    1, // "ſ" (long s) upper-cases to "S"
		"/v1/%E2%84%AAit":    2, // the Kelvin sign folds to "k"
		"/v1/l%C4%B1st":      3, // dotless "ı" upper-cases to "I"
		"/v1/st%C3%A4tus":    -1,
		"/v1/%C4%B0tem":      -1,
		"/v1/%EF%BC%B3tatus": -1, // a full-width "Ｓ" is another letter
	} {
		if got := priceOf(t, table, "GET", raw); got != want {
			t.Errorf("%s: %d, want %d", raw, got, want)
		}
	}
}

// TestRouteMatrixParams: when allowed, ";params" are priced both ways: without them (what
// Tomcat and Spring route on) and with them (what Express routes on); the higher price wins.
func TestRouteMatrixParams(t *testing.T) {
	table := routingTable(t, Routing{AllowMatrixParams: true},
		rule("GET", "/v1/quote", 1000), rule("GET", "/v1/free", 0), rule("GET", "/v1/*", 50))
	for raw, want := range map[string]int64{
		"/v1/quote;jsessionid=1": 1000, // stripped: the quote; kept: /v1/* (50)
		"/v1/QUOTE;x=1,2":        1000,
		"/v1/free;x":             50, // stripped: free; kept: a /v1/* item — never cheaper
		"/v1/free":               0,
		"/v1/a;b/../quote":       1000,
	} {
		if got := priceOf(t, table, "GET", raw); got != want {
			t.Errorf("%s: %d, want %d", raw, got, want)
		}
	}
	r, err := table.Route("GET", "/v1/quote;a=1;b=%20")
	if err != nil || r.RawPath != "/v1/quote;a=1;b=%20" || r.Path != "/v1/quote;a=1;b= " {
		t.Fatalf("matrix parameters must be forwarded: %+v %v", r, err)
	}
	for _, raw := range []string{"/v1/..;/quote", "/v1/.;x/quote", "/v1/;x/quote", "/v1/quote.;x", "/v1/quote%3Bx"} {
		if _, err := table.Route("GET", raw); !errors.Is(err, ErrAmbiguousPath) {
			t.Errorf("%s: %v, want refused", raw, err)
		}
	}
}

// TestRouteEncodedSlash: when allowed, %2F stays inside its segment on the way upstream, and
// the path is priced both with the slash in the segment and as a separator.
func TestRouteEncodedSlash(t *testing.T) {
	table := routingTable(t, Routing{AllowEncodedSlash: true},
		rule("GET", "/v1/projects/*/issues", 10), rule("GET", "/v1/quote", 1000), rule("GET", "/v1/*", 1))
	for raw, want := range map[string]int64{
		"/v1/projects/group%2Fname/issues": 10,
		"/v1%2Fquote":                      1000, // one segment "v1/quote", or /v1/quote
		"/v1/a%2fquote":                    1,
	} {
		if got := priceOf(t, table, "GET", raw); got != want {
			t.Errorf("%s: %d, want %d", raw, got, want)
		}
	}
	r, err := table.Route("GET", "/v1/projects/group%2fname/issues")
	if err != nil || r.RawPath != "/v1/projects/group%2Fname/issues" {
		t.Fatalf("the encoded slash must be forwarded encoded: %+v %v", r, err)
	}
	for _, raw := range []string{"/v1/a%2F..%2Fquote", "/v1/a%2F%2Fb", "/v1/%2Fa", "/v1/a.%2Fb", "/v1/a%2Fb;x"} {
		if _, err := table.Route("GET", raw); !errors.Is(err, ErrAmbiguousPath) {
			t.Errorf("%s: %v, want refused", raw, err)
		}
	}
}

// TestRouteEncodedSlashAndMatrixParams: with both allowed, a path holding both in different
// segments is also priced as Tomcat reads it: parameters dropped and %2F decoded.
func TestRouteEncodedSlashAndMatrixParams(t *testing.T) {
	table := routingTable(t, Routing{AllowEncodedSlash: true, AllowMatrixParams: true}, rule("GET", "/v1/items/*", 2000))
	if got := priceOf(t, table, "GET", "/v1;x=1/items%2F42"); got != 2000 {
		t.Fatalf("price %d, want 2000", got)
	}
}

// TestRouteDenyUnlisted: with routing.unlisted deny, a path no rule matches is ErrUnlisted.
func TestRouteDenyUnlisted(t *testing.T) {
	table := routingTable(t, Routing{DenyUnlisted: true}, rule("GET", "/v1/quote", 1), rule("*", "/v1/health", 0))
	if _, err := table.Route("GET", "/v1/other"); !errors.Is(err, ErrUnlisted) {
		t.Fatalf("unlisted path: %v", err)
	}
	if _, err := table.Route("POST", "/v1/quote"); !errors.Is(err, ErrUnlisted) {
		t.Fatalf("unlisted method: %v", err)
	}
	for raw, want := range map[string]int64{"/v1/health": 0, "/V1/Health/": 0, "/v1/quote": 1} {
		if got := priceOf(t, table, "GET", raw); got != want {
			t.Errorf("%s: %d, want %d", raw, got, want)
		}
	}
}
