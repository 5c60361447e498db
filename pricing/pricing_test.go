package pricing

import (
	"errors"
	"go/build"
	"math/big"
	"strings"
	"testing"
)

func rule(method, p string, price int64) Rule {
	return Rule{Method: method, Path: p, Price: big.NewInt(price), Description: method + " " + p}
}

// priceOf routes GET-style requests in tests: the matched price, -1 when unlisted.
func priceOf(t *testing.T, table *Table, method, rawPath string) int64 {
	t.Helper()
	r, err := table.Route(method, rawPath)
	if err != nil {
		t.Fatalf("Route(%q, %q): %v", method, rawPath, err)
	}
	if !r.Listed {
		return -1
	}
	return r.Rule.Price.Int64()
}

func TestRoute(t *testing.T) {
	table, err := New([]Rule{
		rule("GET", "/v1/quote", 1000),
		rule("POST", "/v1/quote", 2000),
		rule("*", "/v1/items/*", 3000),
		rule("", "/v1/files/**", 4000),
		rule("GET", "/v1/free/**", 0),
		rule("get", "/v1/**", 5000),
		rule("PUT", "/", 6000),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         int64 // -1: no rule matches
	}{
		{"GET", "/v1/quote", 1000},
		{"HEAD", "/v1/quote", 1000}, // GET rules cover HEAD
		{"get", "/v1/quote", 1000},  // methods compare case-insensitively
		{"", "/v1/quote", 1000},     // net/http treats "" as GET
		{"POST", "/v1/quote", 2000},
		{"DELETE", "/v1/quote", -1},
		// Spellings of the same resource are priced the same.
		{"GET", "/v1/quote/", 1000},
		{"GET", "//v1/quote", 1000},
		{"GET", "/v1//quote", 1000},
		{"GET", "/v1/../v1/quote", 1000},
		{"GET", "/v1/./quote", 1000},
		{"GET", "/../v1/quote", 1000},
		{"GET", "v1/quote", 1000},
		{"GET", "/v1/%71uote", 1000},
		{"GET", "/v1/x/%2e%2E/quote", 1000},
		// Paths match in any letter case, as Express and ASP.NET route.
		{"GET", "/V1/QUOTE", 1000},
		{"PATCH", "/v1/items/42", 3000},
		{"PATCH", "/V1/ITEMS/42/", 3000},
		// Every reading is priced and the highest price applies: read exactly, /v1/Quote is a
		// /v1/** path (5000), which is what a case-sensitive upstream serves.
		{"GET", "/v1/Quote", 5000},
		{"GET", "/v1/ITEMS/42/", 5000},
		{"GET", "/v1/items", 5000},      // "*" needs one segment
		{"DELETE", "/v1/items", -1},     // and the GET catch-all does not apply
		{"DELETE", "/v1/items/4/5", -1}, // exactly one
		{"DELETE", "/v1/files", 4000},   // "**" matches zero segments
		{"DELETE", "/v1/files/a/b/c", 4000},
		{"DELETE", "/v1/filesx", -1},
		{"GET", "/v1/free/x", 0}, // zero-priced rule matches and shadows /v1/**
		{"GET", "/v1/anything/else", 5000},
		{"PUT", "/", 6000},
		{"PUT", "", 6000},
		{"PUT", "/.", 6000},
		{"PUT", "/x", -1},
		// A spelling that reaches a cheaper rule only case-insensitively keeps the higher price:
		// a case-sensitive upstream routes /v1/FREE/x like any /v1/** path.
		{"GET", "/v1/FREE/x", 5000},
	}
	for _, tt := range tests {
		if got := priceOf(t, table, tt.method, tt.path); got != tt.want {
			t.Errorf("Route(%q, %q) price %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestFirstMatchWins(t *testing.T) {
	// The rules overlap on GET /v1/quote, but neither covers the other.
	table, err := New([]Rule{rule("GET", "/v1/*", 1), rule("*", "/v1/quote", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if got := priceOf(t, table, "GET", "/v1/quote"); got != 1 {
		t.Fatalf("price = %d, want the first rule's 1", got)
	}
	if got := priceOf(t, table, "POST", "/v1/quote"); got != 2 {
		t.Fatalf("price = %d, want the second rule's 2", got)
	}
}

func TestPricesAreCopied(t *testing.T) {
	price := big.NewInt(1000)
	table, err := New([]Rule{{Method: "GET", Path: "/x", Price: price}})
	if err != nil {
		t.Fatal(err)
	}
	price.SetInt64(1)
	got, _ := table.Route("GET", "/x")
	got.Rule.Price.SetInt64(2)
	table.Rules()[0].Price.SetInt64(3)
	if again := priceOf(t, table, "GET", "/x"); again != 1000 {
		t.Fatalf("table price changed to %d", again)
	}
}

func TestEmptyAndNilTable(t *testing.T) {
	var nilTable *Table
	if r, err := nilTable.Route("GET", "/a/../b"); err != nil || r.Listed || r.Path != "/b" {
		t.Errorf("nil table: %+v %v", r, err)
	}
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := priceOf(t, empty, "GET", "/"); got != -1 {
		t.Error("empty table matched")
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		rule Rule
		text string
	}{
		{rule("GET", "", 1), "empty"},
		{rule("GET", "v1/quote", 1), `must start with "/"`},
		{rule("GET", "/v1//quote", 1), "empty segment"},
		{rule("GET", "/v1/quote/", 1), "empty segment"},
		{rule("GET", "/v1/../quote", 1), `".." segment`},
		{rule("GET", "/v1/./quote", 1), `"." segment`},
		{rule("GET", "/v1/**/x", 1), "only be the last segment"},
		{rule("GET", "/v1/a*", 1), "whole segment"},
		{rule("GET", "/v1/***", 1), "whole segment"},
		{rule("GET", "/v1/a%20b", 1), "decoded path"},
		{rule("GET", "/v1/quote?x=1", 1), "query"},
		{rule("GET", "/v1/\x00", 1), "control character"},
		{rule("GET", "/v1/\u0085", 1), "control character"},
		{rule("GET", "/v1/q\xffuote", 1), "not UTF-8"},
		{rule("GET", "/v1/quote;x", 1), "matrix parameters"},
		{rule("GET", "/v1\\quote", 1), "backslash"},
		{rule("GET", "/v1/quote.", 1), "ending in a dot"},
		{rule("GET", "/v1/quote /x", 1), "ending in a dot or a space"},
		{rule("G ET", "/x", 1), "not an HTTP method token"},
		{rule("GET/", "/x", 1), "not an HTTP method token"},
		{Rule{Method: "GET", Path: "/x"}, "price: missing"},
		{rule("GET", "/x", -1), "outside"},
		{Rule{Method: "GET", Path: "/x", Price: new(big.Int).Lsh(big.NewInt(1), 256)}, "outside"},
	}
	for _, tt := range tests {
		_, err := New([]Rule{rule("GET", "/ok", 1), tt.rule})
		if err == nil {
			t.Errorf("New(%+v) succeeded", tt.rule)
			continue
		}
		if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "pricing rule 1: ") ||
			!strings.Contains(err.Error(), tt.text) {
			t.Errorf("New(%+v) error %q; want rule 1 and %q", tt.rule, err, tt.text)
		}
	}
}

func TestNewReportsEveryBadRule(t *testing.T) {
	_, err := New([]Rule{rule("GET", "x", 1), rule("GET", "/ok", 1), rule("GET", "/y/", 1)})
	if err == nil || !strings.Contains(err.Error(), "rule 0:") || !strings.Contains(err.Error(), "rule 2:") {
		t.Fatalf("error %v; want both rule 0 and rule 2", err)
	}
	_, err = New([]Rule{{Method: "BAD METHOD", Path: "x"}})
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RuleError
		if !errors.As(e, &re) || re.Index != 0 {
			t.Fatalf("error %v is not a RuleError for rule 0", e)
		}
		fields = append(fields, re.Field)
	}
	if strings.Join(fields, ",") != "method,path,price" {
		t.Fatalf("fields = %v, want method, path and price", fields)
	}
}

func TestUnreachableRules(t *testing.T) {
	tests := []struct {
		earlier, later Rule
		unreachable    bool
	}{
		{rule("GET", "/a", 1), rule("GET", "/a", 2), true},
		{rule("*", "/a", 1), rule("POST", "/a", 2), true},
		{rule("GET", "/a", 1), rule("HEAD", "/a", 2), true},
		{rule("get", "/a", 1), rule("GET", "/a", 2), true},
		{rule("HEAD", "/a", 1), rule("GET", "/a", 2), false},
		{rule("GET", "/a", 1), rule("*", "/a", 2), false},
		{rule("GET", "/a", 1), rule("POST", "/a", 2), false},
		{rule("GET", "/**", 1), rule("GET", "/a/b", 2), true},
		{rule("GET", "/**", 1), rule("GET", "/", 2), true},
		{rule("GET", "/a/**", 1), rule("GET", "/a", 2), true},
		{rule("GET", "/a/**", 1), rule("GET", "/a/*/**", 2), true},
		{rule("GET", "/a/*", 1), rule("GET", "/a/b", 2), true},
		{rule("GET", "/a/*", 1), rule("GET", "/a/*", 2), true},
		{rule("GET", "/a/*", 1), rule("GET", "/a/**", 2), false}, // /a and /a/b/c are left
		{rule("GET", "/a/b", 1), rule("GET", "/a/*", 2), false},
		{rule("GET", "/a/*/c", 1), rule("GET", "/a/b/**", 2), false},
		{rule("GET", "/a/*/**", 1), rule("GET", "/a/**", 2), false}, // /a is left
		{rule("GET", "/", 1), rule("GET", "/**", 2), false},
		{rule("GET", "/a", 1), rule("GET", "/b", 2), false},
		{rule("GET", "/a", 1), rule("GET", "/A", 2), true}, // paths match in any letter case
		{rule("GET", "/ſ", 1), rule("GET", "/S", 2), true},
	}
	for _, tt := range tests {
		_, err := New([]Rule{tt.earlier, tt.later})
		got := err != nil && strings.Contains(err.Error(), "pricing rule 1: unreachable: the rule at index 0")
		if got != tt.unreachable || (err != nil && !got) {
			t.Errorf("%s %s then %s %s: error %v, want unreachable=%v",
				tt.earlier.Method, tt.earlier.Path, tt.later.Method, tt.later.Path, err, tt.unreachable)
		}
	}
}

func TestRouteCanonicalPaths(t *testing.T) {
	for in, want := range map[string][2]string{ // decoded, escaped
		"":                            {"/", "/"},
		"/":                           {"/", "/"},
		"*":                           {"/*", "/*"},
		"a":                           {"/a", "/a"},
		"/a/b/":                       {"/a/b", "/a/b"},
		"//a///b":                     {"/a/b", "/a/b"},
		"/a/./b/../c":                 {"/a/c", "/a/c"},
		"/../../etc":                  {"/etc", "/etc"},
		"/a/b/..":                     {"/a", "/a"},
		"/a/%2e%2E/b/%2e":             {"/b", "/b"},
		"/Caf%c3%A9/A%20b":            {"/Café/A b", "/Caf%C3%A9/A%20b"},
		"/\u00e9t\u00e9/":             {"/été", "/%C3%A9t%C3%A9"},
		"/x/%41%7e%21$&'()*+,=:@-_.z": {"/x/A~!$&'()*+,=:@-_.z", "/x/A~!$&'()*+,=:@-_.z"},
		`/a/"<>{}|^` + "`":            {`/a/"<>{}|^` + "`", "/a/%22%3C%3E%7B%7D%7C%5E%60"},
	} {
		r, err := (&Table{}).Route("GET", in)
		if err != nil || r.Path != want[0] || r.RawPath != want[1] {
			t.Errorf("Route(%q) = %q %q, %v; want %q %q", in, r.Path, r.RawPath, err, want[0], want[1])
		}
	}
}

// TestImports keeps pricing pure: the standard library and money only.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/payper/payper/money" {
			t.Errorf("pricing imports %s; it may import only the standard library and money", imp)
		}
	}
}
