package paywall

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

type fakeGate struct{ wait atomic.Int64 } // refusing while > 0

func (g *fakeGate) Refusing() (time.Duration, bool) {
	w := time.Duration(g.wait.Load())
	return w, w > 0
}

// countingMethod counts Authorize calls: each one is a signature check and a reservation.
type countingMethod struct {
	*cashMethod
	authorized atomic.Int64
}

func (m *countingMethod) Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, info RequestInfo) (Charge, error) {
	m.authorized.Add(1)
	return m.cashMethod.Authorize(ctx, req, p, info)
}

// TestGateRefusesBeforeAnyPaymentWork: while the gate refuses, a priced request gets 503 with
// Retry-After at once: its payment is neither decoded nor verified nor reserved, and the
// handler is not called. Free routes are not the paywall's business.
func TestGateRefusesBeforeAnyPaymentWork(t *testing.T) {
	method := &countingMethod{cashMethod: &cashMethod{valid: map[string]bool{"t1": true}, spent: map[string]bool{}}}
	table, err := pricing.New([]pricing.Rule{{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000)}})
	if err != nil {
		t.Fatal(err)
	}
	gate := &fakeGate{}
	pw, err := New(Options{Pricer: table, Methods: []Method{method}, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	srv := httptest.NewServer(pw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
	})))
	defer srv.Close()
	get := func(path string, header http.Header) (*http.Response, errorBody) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body errorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	valid := cashHeader(t, "t1", method.Requirements(big.NewInt(1000)))

	gate.wait.Store(int64(1500 * time.Millisecond))
	for name, header := range map[string]http.Header{
		"valid payment": valid,
		"no payment":    nil,
		"undecodable":   {"Payment-Signature": {"not base64!"}},
	} {
		resp, body := get("/v1/quote", header)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || body.Error != "upstream_unavailable" {
			t.Fatalf("%s while the gate refuses: %d %+v, Retry-After %q", name, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	if n := method.authorized.Load(); n != 0 || served.Load() != 0 {
		t.Fatalf("while refusing: %d payments checked, handler called %d times", n, served.Load())
	}
	if resp, _ := get("/v1/free", nil); resp.StatusCode != 200 {
		t.Fatalf("an unpriced route is the proxy's to refuse, not the paywall's: %d", resp.StatusCode)
	}

	gate.wait.Store(0)
	if resp, _ := get("/v1/quote", valid); resp.StatusCode != 200 || resp.Header.Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("after the gate opens: %d", resp.StatusCode)
	}
	if method.authorized.Load() != 1 {
		t.Fatal("the payment was not checked once the gate let it through")
	}
}

type hintedOutage struct{ wait time.Duration }

func (h hintedOutage) Error() string             { return "rpc breaker open" }
func (h hintedOutage) RetryAfter() time.Duration { return h.wait }

// TestRetryAfterFollowsTheOutage: a 503 for an unavailable dependency suggests the wait its error
// estimates (an open breaker's cool-down), rounded up to whole seconds; without one, 2 s.
func TestRetryAfterFollowsTheOutage(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: %w", ErrUnavailable, hintedOutage{6500 * time.Millisecond}), "7"},
		{fmt.Errorf("%w: %w", ErrUnavailable, hintedOutage{time.Millisecond}), "1"},
		{fmt.Errorf("%w: store down", ErrUnavailable), "2"},
	} {
		if got := retryAfterOf(c.err); got != c.want {
			t.Errorf("Retry-After for %v: %s, want %s", c.err, got, c.want)
		}
	}
}

// closingGate starts refusing once a payment was authorized: the upstream broke down while the
// payment was being verified.
type closingGate struct{ m *cashMethod }

func (g closingGate) Refusing() (time.Duration, bool) {
	return time.Second, strings.Contains(g.m.eventList(), "authorize")
}

// TestBeforeFlowAsksTheGateBeforeTakingThePayment: an upfront payment is not taken when the
// upstream is known to be down by then; the reservation is given back.
func TestBeforeFlowAsksTheGateBeforeTakingThePayment(t *testing.T) {
	cash := &cashMethod{valid: map[string]bool{"t1": true}, spent: map[string]bool{}}
	table, _ := pricing.New([]pricing.Rule{{Method: "GET", Path: "/s", Price: big.NewInt(1000)}})
	pw, err := New(Options{Pricer: table, Methods: []Method{cash}, Flow: FlowBefore, Gate: closingGate{cash}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pw.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { cash.note("handler") })))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/s", nil)
	for k, v := range cashHeader(t, "t1", upfront(cash.Requirements(big.NewInt(1000)))) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get(x402.HeaderPaymentResponse) != "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if got := cash.eventList(); got != "authorize /s,cancel upstream_unavailable" {
		t.Fatalf("events %s", got)
	}
}
