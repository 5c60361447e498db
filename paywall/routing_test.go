package paywall

import (
	"bufio"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/proxy"
)

// proxied is the paywall in front of the real reverse proxy, in front of an upstream that
// records the request target it received, as the gateway runs them.
type proxied struct {
	method *cashMethod
	addr   string // the paywall's host:port
	mu     sync.Mutex
	seen   []string // request targets the upstream received, in order
}

func newProxied(t *testing.T, table *pricing.Table) *proxied {
	t.Helper()
	p := &proxied{method: &cashMethod{valid: map[string]bool{"t1": true, "t2": true, "t3": true}, spent: map[string]bool{}}}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.RequestURI)
		p.mu.Unlock()
		io.WriteString(w, "upstream served "+r.RequestURI)
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	px, err := proxy.New(target, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := New(Options{Pricer: table, Methods: []Method{p.method}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pw.Wrap(px))
	t.Cleanup(srv.Close)
	p.addr = srv.Listener.Addr().String()
	return p
}

// upstreamSaw returns what the upstream received since the last call.
func (p *proxied) upstreamSaw() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := p.seen
	p.seen = nil
	return seen
}

// rawGet sends target as the request line's target, byte for byte, which http.Client would
// re-encode.
func rawGet(t *testing.T, addr, target string, header http.Header) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, addr)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func attackTable(t *testing.T) *pricing.Table {
	t.Helper()
	table, err := pricing.New([]pricing.Rule{
		{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000)},
		{Method: "*", Path: "/v1/free", Price: big.NewInt(0)},
		{Method: "GET", Path: "/v1/items/*", Price: big.NewInt(2000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// priceDodges are spellings of priced routes that some upstream reads as the priced route:
// Express and ASP.NET route case-insensitively, Tomcat and Spring drop ";params" and then
// resolve dot segments, C servers stop at NUL, IIS and Windows drop a trailing dot or space and
// read "\" as "/", a proxy that passes the decoded path on (nginx's $uri) turns %2F, %3F, %23
// and %25 into structure, and a double decoder reads %2571 as "q".
var priceDodges = []string{
	"/V1/QUOTE",
	"/v1/Quote",
	"/V1/Items/42",
	"/v1/quote;x",
	"/v1/quote;jsessionid=0",
	"/v1/QUOTE;x",
	"/v1/free/..;/quote",
	"/v1/free;/../quote",
	"/v1/quote%00",
	"/v1/quote%00.json",
	"/v1/quote%0a",
	"/v1/quote%0d%0a",
	"/v1/quote%7f",
	"/v1/quote%c2%85",
	"/v1%2Fquote",
	"/v1%2fquote",
	"/v1/free%2F..%2Fquote",
	"/v1/items%2F42",
	"/v1%5Cquote",
	"/v1\\quote",
	"/v1/free\\..\\quote",
	"/v1/quote.",
	"/v1/quote%2e",
	"/v1/quote%20",
	"/v1/quote%20.",
	"/v1/quote#x",
	"/v1/quote%23x",
	"/v1/quote%3Fx",
	"/v1/%2571uote",
	"/v1/qu%C0%AEte",
	"/v1/quote%C0%AE",
	"/v1/quote%ff",
	"/v1/quote\xff",
	"/v1/quote%3Bx",
}

// TestUnpaidSpellingsOfAPricedRouteNeverReachTheUpstream sends each spelling of a priced route
// without payment through the paywall and the real proxy: it is refused (400), challenged (402)
// or unknown (404), never served.
func TestUnpaidSpellingsOfAPricedRouteNeverReachTheUpstream(t *testing.T) {
	p := newProxied(t, attackTable(t))
	for _, target := range priceDodges {
		status, body := rawGet(t, p.addr, target, nil)
		seen := p.upstreamSaw()
		if len(seen) != 0 || (status != 400 && status != 402 && status != 404) {
			t.Errorf("GET %q unpaid: status %d, upstream received %q, body %.80s", target, status, seen, body)
		}
	}
}

// TestHarmlessSpellingsArePricedAndForwardedAsPriced: spellings whose meaning is clear are
// priced as the route they name, and the upstream receives the path that was priced.
func TestHarmlessSpellingsArePricedAndForwardedAsPriced(t *testing.T) {
	p := newProxied(t, attackTable(t))
	for _, target := range []string{
		"/v1/quote", "/v1/quote/", "//v1/quote", "/v1//quote", "/v1/./quote", "/v1/free/../quote",
		"/v1/free/%2e%2e/quote", "/v1/free/.%2E/quote", "/../v1/quote", "/v1/%71uote", "/V1/QUOTE?a=1",
		"/v1/items/A%20b", "/v1/items/caf%C3%A9",
	} {
		if status, _ := rawGet(t, p.addr, target, nil); status != 402 || len(p.upstreamSaw()) != 0 {
			t.Errorf("GET %q unpaid: status %d, want 402 and no upstream call", target, status)
		}
	}
	for i, tc := range []struct{ target, forwarded string }{
		{"/v1/free/%2e%2e/quote", "/v1/quote"},
		{"/V1/QUOTE?a=1", "/V1/QUOTE?a=1"},
		{"/v1/items/caf%c3%a9", "/v1/items/caf%C3%A9"},
	} {
		token := []string{"t1", "t2", "t3"}[i]
		price := int64(1000)
		if strings.Contains(strings.ToLower(tc.target), "items") {
			price = 2000
		}
		status, body := rawGet(t, p.addr, tc.target, cashHeader(t, token, p.method.Requirements(big.NewInt(price))))
		seen := p.upstreamSaw()
		if status != 200 || len(seen) != 1 || seen[0] != tc.forwarded {
			t.Errorf("GET %q paid: status %d, upstream received %q, want %q (body %.80s)", tc.target, status, seen, tc.forwarded, body)
		}
	}
}

// TestRoutingOptionsThroughTheProxy: allowed encodings reach the upstream as priced (an encoded
// slash stays encoded, matrix parameters stay), and a denied unlisted path never does.
func TestRoutingOptionsThroughTheProxy(t *testing.T) {
	table, err := pricing.NewWithRouting([]pricing.Rule{
		{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000)},
		{Method: "GET", Path: "/v1/items/*", Price: big.NewInt(2000)},
	}, pricing.Routing{AllowEncodedSlash: true, AllowMatrixParams: true, DenyUnlisted: true})
	if err != nil {
		t.Fatal(err)
	}
	p := newProxied(t, table)
	for i, tc := range []struct {
		target, forwarded string
		price             int64
	}{
		{"/v1/items/group%2fname", "/v1/items/group%2Fname", 2000},
		{"/v1/quote;v=2", "/v1/quote;v=2", 1000},
		{"/V1/Quote;v=2", "/V1/Quote;v=2", 1000},
	} {
		if status, _ := rawGet(t, p.addr, tc.target, nil); status != 402 {
			t.Errorf("GET %q unpaid: %d, want 402", tc.target, status)
		}
		token := []string{"t1", "t2", "t3"}[i]
		status, _ := rawGet(t, p.addr, tc.target, cashHeader(t, token, p.method.Requirements(big.NewInt(tc.price))))
		if seen := p.upstreamSaw(); status != 200 || len(seen) != 1 || seen[0] != tc.forwarded {
			t.Errorf("GET %q paid: status %d, upstream received %q, want %q", tc.target, status, seen, tc.forwarded)
		}
	}
	for _, target := range []string{"/v1/other", "/admin", "/v1/items/a/b"} {
		if status, _ := rawGet(t, p.addr, target, nil); status != 404 || len(p.upstreamSaw()) != 0 {
			t.Errorf("GET %q: %d, want 404 and no upstream call", target, status)
		}
	}
}
