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

func TestMatch(t *testing.T) {
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
		// Case-sensitive paths: a different path, priced only by catch-alls.
		{"GET", "/V1/QUOTE", -1},
		{"GET", "/v1/QUOTE", 5000},
		{"PATCH", "/v1/items/42", 3000},
		{"GET", "/v1/items/42/", 3000},
		{"GET", "/v1/items", 5000},       // "*" needs one segment
		{"DELETE", "/v1/items", -1},      // and the GET catch-all does not apply
		{"DELETE", "/v1/items/4/5", -1},  // exactly one
		{"GET", "/v1/items/a%2Fb", 3000}, // a decoded path with a literal "%" segment
		{"DELETE", "/v1/files", 4000},    // "**" matches zero segments
		{"DELETE", "/v1/files/a/b/c", 4000},
		{"DELETE", "/v1/filesx", -1},
		{"GET", "/v1/free/x", 0}, // zero-priced rule matches and shadows /v1/**
		{"GET", "/v1/anything/else", 5000},
		{"PUT", "/", 6000},
		{"PUT", "", 6000},
		{"PUT", "/.", 6000},
		{"PUT", "/x", -1},
	}
	for _, tt := range tests {
		got, ok := table.Match(tt.method, tt.path)
		if tt.want < 0 {
			if ok {
				t.Errorf("Match(%q, %q) = %s %s, want no match", tt.method, tt.path, got.Method, got.Path)
			}
			continue
		}
		if !ok || got.Price.Int64() != tt.want {
			t.Errorf("Match(%q, %q) = %v %v, want price %d", tt.method, tt.path, got.Price, ok, tt.want)
		}
	}
}

func TestFirstMatchWins(t *testing.T) {
	// The rules overlap on GET /v1/quote, but neither covers the other.
	table, err := New([]Rule{rule("GET", "/v1/*", 1), rule("*", "/v1/quote", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := table.Match("GET", "/v1/quote"); got.Price.Int64() != 1 {
		t.Fatalf("price = %s, want the first rule's 1", got.Price)
	}
	if got, _ := table.Match("POST", "/v1/quote"); got.Price.Int64() != 2 {
		t.Fatalf("price = %s, want the second rule's 2", got.Price)
	}
}

func TestPricesAreCopied(t *testing.T) {
	price := big.NewInt(1000)
	table, err := New([]Rule{{Method: "GET", Path: "/x", Price: price}})
	if err != nil {
		t.Fatal(err)
	}
	price.SetInt64(1)
	got, _ := table.Match("GET", "/x")
	got.Price.SetInt64(2)
	table.Rules()[0].Price.SetInt64(3)
	if again, _ := table.Match("GET", "/x"); again.Price.Int64() != 1000 {
		t.Fatalf("table price changed to %s", again.Price)
	}
}

func TestEmptyAndNilTable(t *testing.T) {
	var nilTable *Table
	if _, ok := nilTable.Match("GET", "/"); ok {
		t.Error("nil table matched")
	}
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Match("GET", "/"); ok {
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

func TestCanonicalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                "/",
		"/":               "/",
		"a":               "/a",
		"/a/b/":           "/a/b",
		"//a///b":         "/a/b",
		"/a/./b/../c":     "/a/c",
		"/../../etc":      "/etc",
		"/a/b/..":         "/a",
		"/a%2Fb/./c":      "/a%2Fb/c",
		"/\u00e9t\u00e9/": "/\u00e9t\u00e9",
	} {
		if got := CanonicalPath(in); got != want {
			t.Errorf("CanonicalPath(%q) = %q, want %q", in, got, want)
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
