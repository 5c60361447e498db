package paywall

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

const payID = "pay_0123456789abcdef0123456789abcdef"

// idemFixture is a paywall with the payment-identifier extension on, over a cash method whose
// charges can end pending, and an upstream that can be held and can answer large bodies.
type idemFixture struct {
	method   *resumableMethod
	store    *memKept
	server   *httptest.Server
	mu       sync.Mutex
	calls    int
	status   int
	body     string
	hold     chan struct{} // while set, the upstream waits for it to close
	entered  chan struct{} // receives once per upstream call that holds
	required bool
}

func newIdemFixture(t *testing.T, edit func(*Idempotency)) *idemFixture {
	t.Helper()
	f := &idemFixture{
		method: &resumableMethod{cashMethod: &cashMethod{valid: map[string]bool{"t1": true, "t2": true, "op1": true}, spent: map[string]bool{}}},
		store:  newMemKept(),
		body:   "hello",
	}
	table, err := pricing.New([]pricing.Rule{{Method: "*", Path: "/v1/quote", Price: big.NewInt(1000)}})
	if err != nil {
		t.Fatal(err)
	}
	opts := Idempotency{Store: f.store, Wait: 5 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	pw, err := New(Options{Pricer: table, Methods: []Method{f.method}, Idempotency: opts})
	if err != nil {
		t.Fatal(err)
	}
	f.server = httptest.NewServer(pw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls++
		status, body, hold, entered := f.status, f.body, f.hold, f.entered
		f.mu.Unlock()
		if hold != nil {
			entered <- struct{}{}
			<-hold
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Upstream", "yes")
		if status != 0 {
			w.WriteHeader(status)
		}
		io.WriteString(w, body)
	})))
	t.Cleanup(f.server.Close)
	return f
}

func (f *idemFixture) upstreamCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *idemFixture) offer() x402.PaymentRequirements {
	return f.method.Requirements(big.NewInt(1000))
}

// payment is a cash payment header carrying extensions as a client echoes them.
func (f *idemFixture) payment(t *testing.T, token, id string) string {
	t.Helper()
	p := x402.PaymentPayload{X402Version: 2, Accepted: f.offer(), Payload: json.RawMessage(`{"token":"` + token + `"}`)}
	if id != "" {
		p.Extensions = map[string]json.RawMessage{
			x402.ExtensionPaymentIdentifier: json.RawMessage(`{"info":{"required":false,"id":"` + id + `"}}`),
		}
	}
	h, err := x402.EncodeHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type answer struct {
	status     int
	body       string
	header     http.Header
	settlement *x402.SettlementResponse
	errCode    string
}

func (f *idemFixture) send(t *testing.T, method, path, payment string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, f.server.URL+path, nil)
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(body), header: resp.Header}
	if h := resp.Header.Get(x402.HeaderPaymentResponse); h != "" {
		a.settlement, _ = x402.DecodeSettlementResponse(h, 0)
	}
	var e errorBody
	if json.Unmarshal(body, &e) == nil {
		a.errCode = e.Error
	}
	return a
}

// resumableMethod's charges are Resumable: Complete can be told to end pending, and Resume
// reports whatever outcome the test set.
type resumableMethod struct {
	*cashMethod
	rmu         sync.Mutex
	pending     bool   // Complete ends pending
	outcome     string // what Resume reports: "pending", "settled", "failed", "down", "released"
	resumeCalls int
}

type resumableCharge struct {
	*cashCharge
	m *resumableMethod
}

func (m *resumableMethod) Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, info RequestInfo) (Charge, error) {
	c, err := m.cashMethod.Authorize(ctx, req, p, info)
	if err != nil {
		return nil, err
	}
	if cc, ok := c.(*cashCharge); ok {
		return &resumableCharge{cashCharge: cc, m: m}, nil
	}
	return c, nil
}

func (c *resumableCharge) Ref() string { return "cash:" + c.token }

func (c *resumableCharge) Complete(ctx context.Context) (*x402.SettlementResponse, error) {
	c.m.rmu.Lock()
	pending := c.m.pending
	c.m.rmu.Unlock()
	if pending {
		return &x402.SettlementResponse{ErrorReason: string(x402.ReasonSettlementPending), Payer: c.Payer(), Network: "test:1"},
			x402.Failf(x402.ReasonSettlementPending, "not mined yet")
	}
	return c.cashCharge.Complete(ctx)
}

func (m *resumableMethod) Resume(_ context.Context, ref string) (*x402.SettlementResponse, error) {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.resumeCalls++
	token := strings.TrimPrefix(ref, "cash:")
	switch m.outcome {
	case "settled":
		return &x402.SettlementResponse{Success: true, Transaction: "tx-" + token, Network: "test:1", Payer: "payer-" + token}, nil
	case "failed":
		return nil, x402.Failf("cash_bounced", "the cheque bounced")
	case "down":
		return nil, fmt.Errorf("%w: ledger unreachable", ErrUnavailable)
	case "released":
		m.mu.Lock()
		delete(m.spent, token)
		m.mu.Unlock()
		return nil, fmt.Errorf("cash %s: %w", token, ErrChargeReleased)
	}
	return &x402.SettlementResponse{ErrorReason: string(x402.ReasonSettlementPending), Network: "test:1", Payer: "payer-" + token},
		x402.Failf(x402.ReasonSettlementPending, "still not mined")
}

func (m *resumableMethod) set(pending bool, outcome string) {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.pending, m.outcome = pending, outcome
}

func TestChallengeDeclaresPaymentIdentifier(t *testing.T) {
	for _, required := range []bool{false, true} {
		f := newIdemFixture(t, func(o *Idempotency) { o.Required = required })
		a := f.send(t, "GET", "/v1/quote", "")
		pr, err := x402.DecodePaymentRequired(a.header.Get(x402.HeaderPaymentRequired), 0)
		if err != nil {
			t.Fatal(err)
		}
		var ext struct {
			Info   map[string]any `json:"info"`
			Schema map[string]any `json:"schema"`
		}
		if err := json.Unmarshal(pr.Extensions[x402.ExtensionPaymentIdentifier], &ext); err != nil ||
			ext.Info["required"] != required || ext.Schema["type"] != "object" {
			t.Fatalf("required=%v: extensions %s", required, pr.Extensions[x402.ExtensionPaymentIdentifier])
		}
		if !strings.Contains(a.body, `"payment-identifier"`) {
			t.Fatal("the 402 body must repeat the extensions")
		}
	}
	// Without a store the extension is neither declared nor honoured.
	f := newFixture(t)
	resp, body := f.get(t, "/v1/quote", nil)
	if pr := decodeChallenge(t, resp, body); pr.Extensions != nil {
		t.Fatalf("declared without a store: %v", pr.Extensions)
	}
}

// TestSamePaymentSameIDIsAnsweredOnce: the retry gets the first answer, byte for byte, with its
// PAYMENT-RESPONSE, and nothing runs or is charged again.
func TestSamePaymentSameIDIsAnsweredOnce(t *testing.T) {
	f := newIdemFixture(t, nil)
	header := f.payment(t, "t1", payID)
	first := f.send(t, "GET", "/v1/quote?a=1", header)
	if first.status != 200 || first.body != "hello" || first.settlement == nil || !first.settlement.Success {
		t.Fatalf("first: %+v", first)
	}
	for range 2 {
		again := f.send(t, "GET", "/v1/quote?a=1", header)
		if again.status != 200 || again.body != "hello" || again.header.Get(HeaderReplayed) != "true" ||
			again.header.Get(x402.HeaderPaymentResponse) != first.header.Get(x402.HeaderPaymentResponse) ||
			again.header.Get("X-Upstream") != "yes" || again.header.Get("Content-Type") != "text/plain" {
			t.Fatalf("retry: %+v", again)
		}
	}
	if f.upstreamCalls() != 1 || strings.Count(strings.Join(f.method.events, ","), "complete") != 1 {
		t.Fatalf("upstream %d calls, events %v", f.upstreamCalls(), f.method.events)
	}
	if r, _ := f.store.record(payID); r.State != KeptComplete {
		t.Fatalf("record %+v", r)
	}
}

func TestPaymentIdentifierConflictsAndFormat(t *testing.T) {
	f := newIdemFixture(t, nil)
	if a := f.send(t, "GET", "/v1/quote", f.payment(t, "t1", payID)); a.status != 200 {
		t.Fatalf("first: %+v", a)
	}
	cases := []struct {
		name, header, path string
		status             int
		code               string
	}{
		{"another payment", f.payment(t, "t2", payID), "/v1/quote", 409, "payment_identifier_conflict"},
		{"same payment, another request", f.payment(t, "t1", payID), "/v1/quote?other", 409, "payment_identifier_conflict"},
		{"too short", f.payment(t, "t2", "pay_123"), "/v1/quote", 400, "invalid_payment_identifier"},
		{"bad character", f.payment(t, "t2", "pay_0123456789abcdef.0123"), "/v1/quote", 400, "invalid_payment_identifier"},
	}
	for _, tc := range cases {
		if a := f.send(t, "GET", tc.path, tc.header); a.status != tc.status || a.errCode != tc.code {
			t.Errorf("%s: %d %s", tc.name, a.status, a.body)
		}
	}
	if f.upstreamCalls() != 1 {
		t.Fatalf("upstream called %d times", f.upstreamCalls())
	}
	// The identifier is not required: a payment without one is served as before.
	if a := f.send(t, "GET", "/v1/quote", f.payment(t, "t2", "")); a.status != 200 {
		t.Fatalf("without an id: %+v", a)
	}

	req := newIdemFixture(t, func(o *Idempotency) { o.Required = true })
	if a := req.send(t, "GET", "/v1/quote", req.payment(t, "t1", "")); a.status != 400 || a.errCode != "payment_identifier_required" {
		t.Fatalf("required without an id: %+v", a)
	}
	if req.upstreamCalls() != 0 || len(req.method.events) != 0 {
		t.Fatal("a payment refused for its missing id reached the method or upstream")
	}
}

// TestUnchargedAnswersAreNotKept: an upstream error, a refused payment: nothing was charged, so
// the identifier is released and the same payment runs again.
func TestUnchargedAnswersAreNotKept(t *testing.T) {
	f := newIdemFixture(t, nil)
	f.status = 503
	header := f.payment(t, "t1", payID)
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 503 {
		t.Fatalf("upstream 503: %+v", a)
	}
	if _, ok := f.store.record(payID); ok {
		t.Fatal("an uncharged answer was kept")
	}
	f.status = 0
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 200 || a.header.Get(HeaderReplayed) != "" {
		t.Fatalf("retry after the upstream recovered: %+v", a)
	}
	refused := f.payment(t, "unknown", "pay_refused_payment_0001")
	for range 2 {
		if a := f.send(t, "GET", "/v1/quote", refused); a.status != 402 {
			t.Fatalf("refused payment: %+v", a)
		}
	}
	if f.upstreamCalls() != 2 {
		t.Fatalf("upstream called %d times", f.upstreamCalls())
	}
}

// TestLargeResponseIsServedButNotKept: above the cap the answer still goes out; a retry learns
// that it paid (PAYMENT-RESPONSE) and that the body is gone (409 response_not_kept).
func TestLargeResponseIsServedButNotKept(t *testing.T) {
	f := newIdemFixture(t, func(o *Idempotency) { o.MaxResponseBytes = 10 })
	f.body = strings.Repeat("x", 11)
	header := f.payment(t, "t1", payID)
	first := f.send(t, "GET", "/v1/quote", header)
	if first.status != 200 || first.body != f.body {
		t.Fatalf("first: %+v", first)
	}
	again := f.send(t, "GET", "/v1/quote", header)
	if again.status != 409 || again.errCode != "response_not_kept" || again.settlement == nil || !again.settlement.Success ||
		again.settlement.Transaction != "tx-t1" {
		t.Fatalf("retry: %+v", again)
	}
	if f.upstreamCalls() != 1 {
		t.Fatal("the upstream ran again")
	}
}

// TestConcurrentDuplicateWaitsOrIsToldToRetry: a copy arriving while the first request runs
// never runs itself; it waits for the first answer, or after Wait gets 409 payment_in_progress
// with Retry-After.
func TestConcurrentDuplicateWaitsOrIsToldToRetry(t *testing.T) {
	for _, wait := range []time.Duration{time.Millisecond, 30 * time.Second} {
		f := newIdemFixture(t, func(o *Idempotency) { o.Wait = wait })
		f.hold, f.entered = make(chan struct{}), make(chan struct{}, 1)
		header := f.payment(t, "t1", payID)
		firstDone := make(chan answer, 1)
		go func() { firstDone <- f.send(t, "GET", "/v1/quote", header) }()
		<-f.entered
		secondDone := make(chan answer, 1)
		go func() { secondDone <- f.send(t, "GET", "/v1/quote", header) }()
		if wait == time.Millisecond {
			if a := <-secondDone; a.status != 409 || a.errCode != "payment_in_progress" || a.header.Get("Retry-After") == "" {
				t.Fatalf("duplicate in flight: %+v", a)
			}
			close(f.hold)
		} else {
			close(f.hold)
			if a := <-secondDone; a.status != 200 || a.body != "hello" {
				t.Fatalf("waiting duplicate: %+v", a)
			}
		}
		if a := <-firstDone; a.status != 200 {
			t.Fatalf("first: %+v", a)
		}
		if f.upstreamCalls() != 1 {
			t.Fatalf("wait %s: upstream called %d times", wait, f.upstreamCalls())
		}
	}
}

// TestStandaloneOperationIsKept: an operation paid with an identifier (a channel refund) is
// answered again from the store.
func TestStandaloneOperationIsKept(t *testing.T) {
	f := newIdemFixture(t, nil)
	header := f.payment(t, "op1", payID)
	first := f.send(t, "GET", "/v1/quote", header)
	again := f.send(t, "GET", "/v1/quote", header)
	if first.status != 200 || again.status != 200 || again.body != first.body || again.header.Get(HeaderReplayed) != "true" {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	if strings.Count(strings.Join(f.method.events, ","), "complete") != 1 {
		t.Fatalf("events %v", f.method.events)
	}
}
