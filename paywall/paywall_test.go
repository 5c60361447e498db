package paywall

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

// cashMethod is a fake payment scheme: a payload {"token": "..."} is valid when the token is
// listed, each token pays once. The real schemes are tested end to end in internal/app.
type cashMethod struct {
	mu        sync.Mutex
	valid     map[string]bool
	spent     map[string]bool
	failWith  error // returned by Authorize
	failSettl error // returned by Complete
	events    []string
}

// SettlesOnChain makes cash follow the routes' settlement flows, as exact does.
func (m *cashMethod) SettlesOnChain() {}

type cashCharge struct {
	m     *cashMethod
	token string
}

func (m *cashMethod) Requirements(price *big.Int) x402.PaymentRequirements {
	return x402.PaymentRequirements{Scheme: "cash", Network: "test:1", Amount: price.String(), Asset: "COIN", PayTo: "shop", MaxTimeoutSeconds: 30}
}

func (m *cashMethod) Authorize(_ context.Context, _ x402.PaymentRequirements, p *x402.PaymentPayload, info RequestInfo) (Charge, error) {
	if m.failWith != nil {
		return nil, m.failWith
	}
	var body struct{ Token string }
	_ = json.Unmarshal(p.Payload, &body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.valid[body.Token] {
		return nil, x402.Failf("invalid_cash_token", "unknown token")
	}
	if m.spent[body.Token] {
		return nil, x402.Failf("cash_token_spent", "token already used")
	}
	m.spent[body.Token] = true
	m.events = append(m.events, "authorize "+info.Route)
	if strings.HasPrefix(body.Token, "op") {
		return &cashOperation{cashCharge{m: m, token: body.Token}}, nil
	}
	return &cashCharge{m: m, token: body.Token}, nil
}

// cashOperation is a Standalone charge: tokens starting with "op" buy an operation, not the
// handler's response.
type cashOperation struct{ cashCharge }

func (o *cashOperation) Body() []byte { return []byte(`{"done":"` + o.token + `"}`) }

func (c *cashCharge) Payer() string { return "payer-" + c.token }
func (c *cashCharge) Complete(context.Context) (*x402.SettlementResponse, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.failSettl != nil {
		c.m.events = append(c.m.events, "complete failed")
		return nil, c.m.failSettl
	}
	c.m.events = append(c.m.events, "complete")
	return &x402.SettlementResponse{Success: true, Transaction: "tx-" + c.token, Network: "test:1", Payer: c.Payer()}, nil
}
func (c *cashCharge) Cancel(_ context.Context, reason string) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	delete(c.m.spent, c.token)
	c.m.events = append(c.m.events, "cancel "+reason)
}

type fixture struct {
	method   *cashMethod
	server   *httptest.Server
	upstream struct {
		mu     sync.Mutex
		calls  int
		status int
		header http.Header
		path   string
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{method: &cashMethod{valid: map[string]bool{"t1": true, "t2": true}, spent: map[string]bool{}}}
	table, err := pricing.New([]pricing.Rule{
		{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000), Description: "a quote"},
		{Method: "*", Path: "/v1/free", Price: big.NewInt(0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := New(Options{Pricer: table, Methods: []Method{f.method}})
	if err != nil {
		t.Fatal(err)
	}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.upstream.mu.Lock()
		f.upstream.calls++
		f.upstream.header = r.Header.Clone()
		f.upstream.path = r.URL.Path
		status := f.upstream.status
		f.upstream.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
		_, _ = io.WriteString(w, "hello from "+r.URL.Path)
	})
	f.server = httptest.NewServer(pw.Wrap(upstream))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.server.URL+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func cashHeader(t *testing.T, token string, accepted x402.PaymentRequirements) http.Header {
	h, err := x402.EncodeHeader(x402.PaymentPayload{X402Version: 2, Accepted: accepted, Payload: json.RawMessage(`{"token":"` + token + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Payment-Signature": {h}}
}

func (f *fixture) offer() x402.PaymentRequirements { return f.method.Requirements(big.NewInt(1000)) }

func decodeChallenge(t *testing.T, resp *http.Response, body string) *x402.PaymentRequired {
	t.Helper()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402; body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("402 must carry Cache-Control: no-store")
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), 0)
	if err != nil {
		t.Fatalf("PAYMENT-REQUIRED: %v", err)
	}
	var fromBody x402.PaymentRequired
	if err := json.Unmarshal([]byte(body), &fromBody); err != nil || fromBody.Error != pr.Error || len(fromBody.Accepts) != len(pr.Accepts) {
		t.Fatalf("402 body must repeat the header: %s", body)
	}
	return pr
}

func TestUnpaidRequestGetsChallenge(t *testing.T) {
	f := newFixture(t)
	resp, body := f.get(t, "/v1/quote?x=1", nil)
	pr := decodeChallenge(t, resp, body)
	if pr.X402Version != 2 || len(pr.Accepts) != 1 || pr.Accepts[0].Amount != "1000" ||
		!strings.HasSuffix(pr.Resource.URL, "/v1/quote?x=1") || pr.Resource.Description != "a quote" {
		t.Fatalf("challenge: %+v", pr)
	}
	if f.upstream.calls != 0 {
		t.Fatal("upstream must not be called without payment")
	}
}

func TestFreeRoutesPassThrough(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/v1/health", "/v1/free"} {
		resp, body := f.get(t, path, http.Header{"X-Payper-Payer": {"0xspoofed"}})
		if resp.StatusCode != 200 || resp.Header.Get(x402.HeaderPaymentRequired) != "" || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		if body != "hello from "+path {
			t.Fatalf("%s: body %q", path, body)
		}
		if f.upstream.header.Get(HeaderPayer) != "" {
			t.Fatal("a client-supplied payer header reached the upstream")
		}
	}
}

func TestPaidRequest(t *testing.T) {
	f := newFixture(t)
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "t1", f.offer()))
	if resp.StatusCode != 200 || body != "hello from /v1/quote" {
		t.Fatalf("paid request: %d %s", resp.StatusCode, body)
	}
	s, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
	if err != nil || !s.Success || s.Transaction != "tx-t1" {
		t.Fatalf("PAYMENT-RESPONSE %+v %v", s, err)
	}
	h := f.upstream.header
	if h.Get(HeaderPayer) != "payer-t1" || h.Get(x402.HeaderPaymentSignature) != "" {
		t.Fatalf("upstream headers: %v", h)
	}
	// Replay: the same token is refused and the upstream is not called again.
	resp, body = f.get(t, "/v1/quote", cashHeader(t, "t1", f.offer()))
	if pr := decodeChallenge(t, resp, body); !strings.HasPrefix(pr.Error, "cash_token_spent") {
		t.Fatalf("replay error %q", pr.Error)
	}
	if f.upstream.calls != 1 {
		t.Fatalf("upstream called %d times", f.upstream.calls)
	}
}

// TestStandaloneChargeSkipsTheHandler: a charge that is an operation of its own (a channel
// refund) is completed without running the handler and answered with its own body; when it
// fails, the client gets the settlement failure and the handler still does not run.
func TestStandaloneChargeSkipsTheHandler(t *testing.T) {
	f := newFixture(t)
	f.method.valid["op1"], f.method.valid["op2"] = true, true
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "op1", f.offer()))
	if resp.StatusCode != 200 || body != `{"done":"op1"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("operation: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	s, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
	if err != nil || !s.Success || s.Transaction != "tx-op1" {
		t.Fatalf("PAYMENT-RESPONSE %+v %v", s, err)
	}
	f.method.failSettl = x402.Failf("cash_bank_closed", "the bank is closed")
	resp, body = f.get(t, "/v1/quote", cashHeader(t, "op2", f.offer()))
	s, err = x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
	if resp.StatusCode != 402 || err != nil || s.Success || s.ErrorReason != "cash_bank_closed" {
		t.Fatalf("failed operation: %d %s %+v %v", resp.StatusCode, body, s, err)
	}
	if f.upstream.calls != 0 {
		t.Fatalf("upstream called %d times for operations", f.upstream.calls)
	}
	if want := "authorize /v1/quote,complete,authorize /v1/quote,complete failed"; strings.Join(f.method.events, ",") != want {
		t.Fatalf("events %v", f.method.events)
	}
}

func TestDotSegmentsCannotDodgeThePrice(t *testing.T) {
	f := newFixture(t)
	resp, body := f.get(t, "/v1/health/../quote", nil)
	decodeChallenge(t, resp, body)
	resp, _ = f.get(t, "/v1/health/../quote", cashHeader(t, "t2", f.offer()))
	if resp.StatusCode != 200 || f.upstream.path != "/v1/quote" {
		t.Fatalf("status %d, upstream saw %q", resp.StatusCode, f.upstream.path)
	}
}

func TestMalformedHeaderIs400(t *testing.T) {
	f := newFixture(t)
	for name, v := range map[string]string{
		"base64":  "!!!",
		"json":    base64.StdEncoding.EncodeToString([]byte("{")),
		"version": base64.StdEncoding.EncodeToString([]byte(`{"x402Version":1}`)),
		"types":   base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":[]}`)),
	} {
		resp, body := f.get(t, "/v1/quote", http.Header{"Payment-Signature": {v}})
		var e errorBody
		if resp.StatusCode != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	resp, _ := f.get(t, "/v1/quote", http.Header{"Payment-Signature": {strings.Repeat("A", 9000)}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized header: %d", resp.StatusCode)
	}
	if f.upstream.calls != 0 {
		t.Fatal("upstream called for malformed payments")
	}
}

func TestNoMatchingOffer(t *testing.T) {
	f := newFixture(t)
	other := f.offer()
	other.Amount = "1"
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "t1", other))
	if pr := decodeChallenge(t, resp, body); pr.Error != "No matching payment requirements" {
		t.Fatalf("error %q", pr.Error)
	}
}

func TestUnavailableIs503(t *testing.T) {
	f := newFixture(t)
	f.method.failWith = errors.Join(ErrUnavailable, errors.New("rpc at 10.1.2.3 refused"))
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "t1", f.offer()))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(body, "10.1.2.3") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestUpstreamErrorChargesNothing(t *testing.T) {
	f := newFixture(t)
	f.upstream.status = 503
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "t1", f.offer()))
	if resp.StatusCode != 503 || body != "hello from /v1/quote" || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
		t.Fatalf("%d %s %v", resp.StatusCode, body, resp.Header)
	}
	if got := strings.Join(f.method.events, ","); got != "authorize /v1/quote,cancel upstream_status" {
		t.Fatalf("events %s", got)
	}
}

func TestFailedChargeWithholdsResponse(t *testing.T) {
	f := newFixture(t)
	f.method.failSettl = x402.Failf(x402.ReasonExactTransactionFailed, "reverted")
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "t1", f.offer()))
	if resp.StatusCode != 402 || strings.Contains(body, "hello") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	s, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
	if err != nil || s.Success || s.ErrorReason != string(x402.ReasonExactTransactionFailed) || s.Transaction != "" || s.Payer != "payer-t1" {
		t.Fatalf("settlement response %+v %v", s, err)
	}
}

type correctedErr struct{ reason *x402.Error }

func (c correctedErr) Error() string { return c.reason.Error() }
func (c correctedErr) Unwrap() error { return c.reason }

func (c correctedErr) Correct(o x402.PaymentRequirements) x402.PaymentRequirements {
	o.Extra = map[string]any{"channelState": map[string]any{"chargedCumulativeAmount": "42"}}
	return o
}

func TestCorrectiveChallenge(t *testing.T) {
	f := newFixture(t)
	f.method.failWith = correctedErr{reason: x402.Failf("invalid_batch_settlement_evm_cumulative_amount_mismatch", "expected 42")}
	resp, body := f.get(t, "/v1/quote", cashHeader(t, "t1", f.offer()))
	pr := decodeChallenge(t, resp, body)
	state, _ := pr.Accepts[0].Extra["channelState"].(map[string]any)
	if !strings.HasPrefix(pr.Error, "invalid_batch_settlement_evm_cumulative_amount_mismatch") || state["chargedCumulativeAmount"] != "42" {
		t.Fatalf("corrective 402: %+v", pr)
	}
}

// TestPaidResponseTooLargeBehindAReverseProxy: in FlowAfterBody a reverse proxy aborts its
// handler when the buffer refuses a write; the client still gets the 502 that says why, and
// nothing is charged.
func TestPaidResponseTooLargeBehindAReverseProxy(t *testing.T) {
	large := strings.Repeat("x", 4096)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, large) }))
	defer origin.Close()
	target, _ := url.Parse(origin.URL)
	method := &cashMethod{valid: map[string]bool{"t1": true}, spent: map[string]bool{}}
	table, err := pricing.New([]pricing.Rule{{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000)}})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := New(Options{Pricer: table, Methods: []Method{method}, MaxResponseBytes: 1024, Flow: FlowAfterBody})
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(pw.Wrap(proxy))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/quote", nil)
	for k, v := range cashHeader(t, "t1", method.Requirements(big.NewInt(1000))) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the client must get an answer, not a dropped connection: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "response_too_large") {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	if strings.Join(method.events, ",") != "authorize /v1/quote,cancel response_too_large" {
		t.Fatalf("payment events: %v", method.events)
	}
}
