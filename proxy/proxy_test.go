package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"go/build"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// echo describes what the upstream received.
type echo struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	RawPath string      `json:"rawPath"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Body    string      `json:"body"`
	Header  http.Header `json:"header"`
}

func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Method", r.Method)
		_ = json.NewEncoder(w).Encode(echo{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Host: r.Host, Body: string(body), Header: r.Header,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// gateway serves a Proxy for upstream (plus an optional path suffix).
func gateway(t *testing.T, upstream string, opts Options) *httptest.Server {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(u, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func decodeEcho(t *testing.T, body []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("upstream reply %q: %v", body, err)
	}
	return e
}

func TestMethods(t *testing.T) {
	gw := gateway(t, echoUpstream(t).URL, Options{})
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE", "HEAD"} {
		var body io.Reader
		if method != "GET" && method != "HEAD" {
			body = strings.NewReader("payload for " + method)
		}
		resp, got := do(t, newRequest(t, method, gw.URL+"/v1/x", body))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Upstream-Method") != method {
			t.Errorf("%s: status %d, upstream saw %q", method, resp.StatusCode, resp.Header.Get("X-Upstream-Method"))
			continue
		}
		if method == "HEAD" {
			if len(got) != 0 {
				t.Errorf("HEAD returned a body: %q", got)
			}
			continue
		}
		e := decodeEcho(t, got)
		if body != nil && e.Body != "payload for "+method {
			t.Errorf("%s: upstream got body %q", method, e.Body)
		}
	}
}

func TestPathJoining(t *testing.T) {
	up := echoUpstream(t)
	tests := []struct {
		base, request, wantPath, wantQuery string
	}{
		{"", "/v1/x?a=1&b=2", "/v1/x", "a=1&b=2"},
		{"/api", "/v1/x?a=1", "/api/v1/x", "a=1"},
		{"/api/", "/v1/x", "/api/v1/x", ""},
		{"/api", "/", "/api/", ""},
		{"/api", "/v1/a%2Fb", "/api/v1/a%2Fb", ""}, // escaped slashes survive
		{"/api?key=k", "/v1/x?a=1", "/api/v1/x", "key=k&a=1"},
	}
	for _, tt := range tests {
		gw := gateway(t, up.URL+tt.base, Options{})
		resp, body := do(t, newRequest(t, "GET", gw.URL+tt.request, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		e := decodeEcho(t, body)
		if e.RawPath != tt.wantPath || e.Query != tt.wantQuery {
			t.Errorf("upstream %q + %q: got path %q query %q, want %q %q",
				tt.base, tt.request, e.RawPath, e.Query, tt.wantPath, tt.wantQuery)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := echoUpstream(t)
	gw := gateway(t, up.URL, Options{})
	req := newRequest(t, "GET", gw.URL+"/x", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9") // spoofed by the client
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Forwarded", "for=203.0.113.9")
	_, body := do(t, req)
	e := decodeEcho(t, body)
	gwHost := strings.TrimPrefix(gw.URL, "http://")
	if got := e.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only the real client 127.0.0.1", got)
	}
	if got := e.Header.Get("X-Forwarded-Host"); got != gwHost {
		t.Errorf("X-Forwarded-Host = %q, want %q", got, gwHost)
	}
	if got := e.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	if got := e.Header.Get("Forwarded"); got != "" {
		t.Errorf("Forwarded = %q, want it dropped", got)
	}
	if e.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host = %q, want its own host", e.Host)
	}
}

func TestStripHeaders(t *testing.T) {
	gw := gateway(t, echoUpstream(t).URL, Options{
		StripRequestHeaders: []string{"PAYMENT-SIGNATURE", "x-payment", "X-Payper-Payer"},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Set("X-Payper-Payer", "0xverified")
		},
	})
	req := newRequest(t, "GET", gw.URL+"/x", nil)
	req.Header.Set("Payment-Signature", "sig")
	req.Header.Set("X-PAYMENT", "legacy")
	req.Header.Set("X-Payper-Payer", "0xforged")
	req.Header.Set("Authorization", "Bearer upstream-token")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "hop-by-hop")
	_, body := do(t, req)
	h := decodeEcho(t, body).Header
	for _, name := range []string{"Payment-Signature", "X-Payment", "X-Hop"} {
		if v := h.Values(name); len(v) != 0 {
			t.Errorf("upstream received %s: %q", name, v)
		}
	}
	if got := h.Values("X-Payper-Payer"); len(got) != 1 || got[0] != "0xverified" {
		t.Errorf("X-Payper-Payer = %q, want only the value set by Rewrite", got)
	}
	if h.Get("Authorization") != "Bearer upstream-token" {
		t.Error("an unlisted header was stripped")
	}
}

func TestStatusPassthrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "try later")
		case "/boom":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"upstream's own error"}`)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/teapot":
			w.Header().Set("Set-Cookie", "a=b")
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "short and stout")
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	gw := gateway(t, up.URL, Options{})
	tests := []struct {
		path, header, value string
		status              int
		body                string
	}{
		{"/busy", "Retry-After", "7", 503, "try later"},
		{"/boom", "", "", 500, `{"error":"upstream's own error"}`},
		{"/moved", "Location", "/elsewhere", 302, ""},
		{"/teapot", "Set-Cookie", "a=b", 418, "short and stout"},
		{"/missing", "", "", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		resp, body := do(t, newRequest(t, "GET", gw.URL+tt.path, nil))
		if resp.StatusCode != tt.status || (tt.body != "" && string(body) != tt.body) {
			t.Errorf("%s: %d %q, want %d %q", tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
		if tt.header != "" && resp.Header.Get(tt.header) != tt.value {
			t.Errorf("%s: %s = %q, want %q", tt.path, tt.header, resp.Header.Get(tt.header), tt.value)
		}
	}
}

func TestLargeBodyRoundTrip(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Length", itoa(n))
		_, _ = io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	}))
	defer up.Close()
	gw := gateway(t, up.URL, Options{})
	payload := bytes.Repeat([]byte("0123456789abcdef"), 512*1024) // 8 MiB
	sum := sha256.Sum256(payload)
	resp, body := do(t, newRequest(t, "POST", gw.URL+"/upload", bytes.NewReader(payload)))
	if string(body) != hex.EncodeToString(sum[:]) || resp.Header.Get("X-Length") != itoa(int64(len(payload))) {
		t.Fatalf("upstream saw a different body: %s (%s bytes)", body, resp.Header.Get("X-Length"))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	gw := gateway(t, "http://"+deadAddr, Options{Logger: logger})
	resp, body := do(t, newRequest(t, "GET", gw.URL+"/v1/quote", nil))
	if resp.StatusCode != http.StatusBadGateway || string(body) != bodyUnavailable ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q (%s)", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	var entry struct {
		Level, Msg, Path, Err string
	}
	if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if entry.Level != "ERROR" || entry.Msg != "upstream request failed" || entry.Path != "/v1/quote" ||
		!strings.Contains(entry.Err, "connection refused") {
		t.Fatalf("log entry %+v does not record the cause", entry)
	}
}

type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func TestCustomTransport(t *testing.T) {
	rt := &countingTransport{base: NewTransport()}
	gw := gateway(t, echoUpstream(t).URL, Options{Transport: rt})
	for range 3 {
		if resp, _ := do(t, newRequest(t, "GET", gw.URL+"/", nil)); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if rt.n.Load() != 3 {
		t.Fatalf("transport used %d times, want 3", rt.n.Load())
	}
}

func TestUpstreamURLCopied(t *testing.T) {
	up := echoUpstream(t)
	u, _ := url.Parse(up.URL + "/api")
	p, err := New(u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/changed"
	gw := httptest.NewServer(p)
	defer gw.Close()
	_, body := do(t, newRequest(t, "GET", gw.URL+"/x", nil))
	if got := decodeEcho(t, body).Path; got != "/api/x" {
		t.Fatalf("path %q: the proxy shares the caller's URL", got)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil upstream accepted")
	}
	for _, u := range []*url.URL{
		{Scheme: "ftp", Host: "127.0.0.1", Path: "/"},
		{Scheme: "http", Path: "/path"}, // no host
		{Path: "/relative"},
		{Opaque: "9000", Scheme: "127.0.0.1"}, // what url.Parse would make of "127.0.0.1:9000" if it could
		{Host: "127.0.0.1:9000"},              // a host without a scheme
	} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%s) accepted", u)
		}
	}
}

// TestImportsStdlibOnly keeps the proxy free of payment and storage code.
func TestImportsStdlibOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("proxy imports %s; it may import only the standard library", imp)
		}
	}
}
