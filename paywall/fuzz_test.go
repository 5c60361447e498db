package paywall

import (
	"bufio"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

// fuzzRules are the routes the spelling fuzzers attack.
var fuzzRules = []pricing.Rule{
	{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000)},
	{Method: "*", Path: "/v1/free", Price: big.NewInt(0)},
	{Method: "GET", Path: "/v1/items/*", Price: big.NewInt(2000)},
	{Method: "*", Path: "/v2/files/**", Price: big.NewInt(3000)},
}

// upstreamModel is how one kind of upstream reads the escaped path the gateway forwards: the
// path it routes on, and whether it routes case-insensitively. ok is false when it refuses the
// path.
type upstreamModel struct {
	name string
	fold bool
	read func(escaped string) (string, bool)
}

func decoded(s string) (string, bool) {
	d, err := url.PathUnescape(s)
	return d, err == nil
}

func cleaned(p string) string { return path.Clean("/" + p) }

var upstreamModels = []upstreamModel{
	// Go's ServeMux and most routers: decode, then resolve dot segments.
	{"go", false, func(e string) (string, bool) { d, ok := decoded(e); return cleaned(d), ok }},
	// Express: routes the raw path, in any letter case.
	{"express", true, func(e string) (string, bool) { return e, true }},
	// Routers that decode first and ignore case (Fastify, Koa options, ASP.NET).
	{"decode-fold", true, func(e string) (string, bool) { d, ok := decoded(e); return cleaned(d), ok }},
	// Tomcat and Spring: drop ";params" from every raw segment, then decode and resolve.
	{"tomcat", false, func(e string) (string, bool) {
		segs := strings.Split(e, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		d, ok := decoded(strings.Join(segs, "/"))
		return cleaned(d), ok
	}},
	// C servers: stop at NUL.
	{"c", false, func(e string) (string, bool) {
		d, ok := decoded(e)
		d, _, _ = strings.Cut(d, "\x00")
		return cleaned(d), ok
	}},
	// IIS: "\" is "/", trailing dots and spaces go, any letter case.
	{"iis", true, func(e string) (string, bool) {
		d, ok := decoded(e)
		segs := strings.Split(strings.ReplaceAll(d, `\`, "/"), "/")
		for i, s := range segs {
			segs[i] = strings.TrimRight(s, ". ")
			if s == "." || s == ".." {
				segs[i] = s
			}
		}
		return cleaned(strings.Join(segs, "/")), ok
	}},
	// A proxy that passes the decoded path on (nginx's $uri) to a server that parses it again.
	{"reparse", false, func(e string) (string, bool) {
		d, ok := decoded(e)
		if i := strings.IndexAny(d, "?#"); i >= 0 {
			d = d[:i]
		}
		d2, ok2 := decoded(d)
		return cleaned(d2), ok && ok2
	}},
}

// priced reports whether an upstream reading p (case-insensitively with fold) serves a priced
// route: the first rule matching its path costs something.
func priced(p string, fold bool) bool {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if p == "/" {
		segs = nil
	}
	for _, r := range fuzzRules {
		if (r.Method == "GET" || r.Method == "*") && naiveMatch(r.Path, segs, fold) {
			return r.Price.Sign() > 0
		}
	}
	return false
}

func naiveMatch(pattern string, segs []string, fold bool) bool {
	pat := strings.Split(pattern[1:], "/")
	if pat[len(pat)-1] == "**" {
		pat = pat[:len(pat)-1]
		if len(segs) < len(pat) {
			return false
		}
		segs = segs[:len(pat)]
	}
	if len(pat) != len(segs) {
		return false
	}
	for i := range pat {
		if pat[i] != "*" && pat[i] != segs[i] && !(fold && strings.EqualFold(pat[i], segs[i])) {
			return false
		}
	}
	return true
}

// spell rewrites base as ops direct: each op byte picks an edit and the next one where it goes.
// The edits are the ways a priced path is spelled to dodge its price.
func spell(base string, ops []byte) string {
	s := base
	for i := 0; i+1 < len(ops) && i < 32; i += 2 {
		at := int(ops[i+1]) % (len(s) + 1)
		var ins string
		switch ops[i] % 24 {
		case 0: // flip the letter case at at
			if at < len(s) {
				c := s[at]
				switch {
				case 'a' <= c && c <= 'z':
					c -= 32
				case 'A' <= c && c <= 'Z':
					c += 32
				}
				s = s[:at] + string(c) + s[at+1:]
			}
			continue
		case 1: // percent-encode the byte at at, in either hex case
			if at < len(s) {
				enc := "%" + strings.ToUpper(hex2(s[at]))
				if ops[i+1]&1 == 1 {
					enc = strings.ToLower(enc)
				}
				s = s[:at] + enc + s[at+1:]
			}
			continue
		case 2:
			ins = ";x=1"
		case 3:
			ins = "%00"
		case 4:
			ins = "%2F"
		case 5:
			ins = "%5C"
		case 6:
			ins = `\`
		case 7:
			ins = "/."
		case 8:
			ins = "/x/.."
		case 9:
			ins = "//"
		case 10:
			ins = "%2e%2e/"
		case 11:
			ins = "."
		case 12:
			ins = "%20"
		case 13:
			ins = "%3B"
		case 14:
			ins = "%25"
		case 15:
			ins = "%23"
		case 16:
			ins = "%3F"
		case 17:
			ins = "%C0%AE"
		case 18:
			ins = "/..;/"
		case 19:
			ins = "%0A"
		case 20:
			ins = "%C5%BF" // "ſ", which folds to "s"
		case 21:
			ins = "/%2e/"
		case 22:
			ins = "#"
		case 23:
			ins = "%E2%80%8B" // a zero-width space
		}
		s = s[:at] + ins + s[at:]
	}
	return s
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// parseTarget parses a request line as net/http's server does; false when it would answer 400.
func parseTarget(target string) (*http.Request, bool) {
	if strings.ContainsAny(target, " \r\n") {
		return nil, false
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: gw\r\n\r\n")))
	return req, err == nil
}

// FuzzSpellingsOfPricedRoutes is the property that matters: whatever path a request spells,
// when the gateway forwards it without payment, no kind of upstream reads the forwarded path as
// a priced route. Spellings are derived from priced paths (letter case, percent-encoding, dot
// segments, matrix parameters, encoded delimiters, overlong forms) or taken as they come.
func FuzzSpellingsOfPricedRoutes(f *testing.F) {
	for _, s := range priceDodges {
		f.Add(s, []byte{}, uint8(0))
	}
	f.Add("", []byte{0, 1, 0, 2, 2, 9}, uint8(0))
	f.Add("", []byte{1, 4, 7, 3, 18, 3}, uint8(4))
	f.Add("", []byte{4, 3, 0, 5}, uint8(2))
	f.Add("", []byte{20, 5, 1, 6}, uint8(1))
	f.Fuzz(func(t *testing.T, raw string, ops []byte, options uint8) {
		rt := pricing.Routing{CaseSensitive: options&1 != 0, AllowEncodedSlash: options&2 != 0, AllowMatrixParams: options&4 != 0}
		target := raw
		if target == "" {
			bases := []string{"/v1/quote", "/v1/items/42", "/v2/files/a/b", "/v1/free"}
			base := bases[0]
			if len(ops) > 0 {
				base, ops = bases[int(ops[0])%len(bases)], ops[1:]
			}
			target = spell(base, ops)
		}
		req, ok := parseTarget(target)
		if !ok {
			return // net/http's server answers 400 itself
		}
		table, err := pricing.NewWithRouting(fuzzRules, rt)
		if err != nil {
			t.Fatal(err)
		}
		pw, err := New(Options{Pricer: table, Methods: []Method{&cashMethod{}}})
		if err != nil {
			t.Fatal(err)
		}
		var forwarded string
		rec := httptest.NewRecorder()
		pw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			forwarded = r.URL.EscapedPath()
		})).ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 402, 404:
		default:
			t.Fatalf("GET %q: status %d", target, rec.Code)
		}
		if rec.Code != 200 {
			return
		}
		for _, m := range upstreamModels {
			fold := m.fold && !rt.CaseSensitive // a case-sensitive table is the operator's word
			if p, ok := m.read(forwarded); ok && priced(p, fold) {
				t.Fatalf("GET %q was forwarded unpaid as %q, which %s reads as the priced %q", target, forwarded, m.name, p)
			}
		}
	})
}

// FuzzPaymentHeaders sends arbitrary PAYMENT-SIGNATURE values (none, one or two) to a priced
// route: the answer is never a server error, nothing in it shows Go's wording, and the
// protected handler runs only for a single header carrying a payment the method authorized.
func FuzzPaymentHeaders(f *testing.F) {
	offer := (&cashMethod{}).Requirements(big.NewInt(1000))
	valid, err := x402.EncodeHeader(x402.PaymentPayload{X402Version: 2, Accepted: offer, Payload: []byte(`{"token":"t1"}`)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, "", uint8(1))
	f.Add(valid, valid, uint8(2))
	f.Add(valid+", "+valid, "", uint8(1))
	f.Add("", valid, uint8(2))
	f.Add("e30=", "", uint8(1))
	f.Add("!!!", "", uint8(1))
	f.Add(b64json(`{"x402Version":2,"accepted":{"scheme":"cash","network":"test:1","amount":"01000","asset":"COIN","payTo":"shop"},"payload":{"token":"t1"}}`), "", uint8(1))
	f.Add(b64json(`{"x402Version":2,"accepted":{"scheme":"cash","network":"test:1","amount":1000},"payload":{}}`), "", uint8(1))
	f.Fuzz(func(t *testing.T, first, second string, count uint8) {
		method := &cashMethod{valid: map[string]bool{"t1": true}, spent: map[string]bool{}}
		table, _ := pricing.New(fuzzRules)
		pw, err := New(Options{Pricer: table, Methods: []Method{method}})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/v1/quote", nil)
		values := []string{first, second}[:min(int(count%3), 2)]
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return // not a header value net/http would deliver
			}
			req.Header.Add("Payment-Signature", v)
		}
		served := false
		rec := httptest.NewRecorder()
		pw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served = true })).ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 402:
		default:
			t.Fatalf("status %d for %q", rec.Code, values)
		}
		if served && (len(values) != 1 || len(method.events) == 0) {
			t.Fatalf("served with headers %q and payment events %v", values, method.events)
		}
		body := rec.Body.String() + rec.Header().Get("Payment-Required")
		for _, g := range []string{"json:", "Go struct", "Go value", "illegal base64", "x402.", "paywall."} {
			if strings.Contains(body, g) {
				t.Fatalf("the answer shows %q: %s", g, body)
			}
		}
	})
}

func b64json(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
