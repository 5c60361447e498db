package client

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// flakyShop declares payment-identifier and answers each attempt from a script: one entry per
// request that reaches it, "" for the normal answer. It records every payment header it saw.
type flakyShop struct {
	mu      sync.Mutex
	script  []func(w http.ResponseWriter) bool // true: answered, stop
	headers []string
	bodies  []string
	unpaid  int
	server  *httptest.Server
}

func newFlakyShop(t *testing.T) *flakyShop {
	s := &flakyShop{}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.server.Close)
	return s
}

func (s *flakyShop) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	var step func(http.ResponseWriter) bool
	if len(s.script) > 0 {
		step, s.script = s.script[0], s.script[1:]
	}
	h := r.Header.Get(x402.HeaderPaymentSignature)
	if h == "" {
		s.unpaid++
	} else {
		s.headers = append(s.headers, h)
		s.bodies = append(s.bodies, string(body))
	}
	s.mu.Unlock()
	if step != nil && step(w) {
		return
	}
	if h == "" {
		offer := (&shop{price: "1000"}).offer()
		challenge, _ := x402.EncodeHeader(x402.PaymentRequired{X402Version: 2, Accepts: []x402.PaymentRequirements{offer},
			Extensions: map[string]json.RawMessage{x402.ExtensionPaymentIdentifier: x402.PaymentIdentifierDeclaration(false)}})
		w.Header().Set(x402.HeaderPaymentRequired, challenge)
		w.WriteHeader(http.StatusPaymentRequired)
		return
	}
	resp, _ := x402.EncodeHeader(x402.SettlementResponse{Success: true, Transaction: "0xabc", Network: "eip155:1337"})
	w.Header().Set(x402.HeaderPaymentResponse, resp)
	io.WriteString(w, "paid content")
}

func status(code int, retryAfter string) func(http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		io.WriteString(w, "try later")
		return true
	}
}

func pending(w http.ResponseWriter) bool {
	s, _ := x402.EncodeHeader(x402.SettlementResponse{ErrorReason: string(x402.ReasonSettlementPending), Network: "eip155:1337"})
	w.Header().Set(x402.HeaderPaymentResponse, s)
	w.WriteHeader(http.StatusPaymentRequired)
	return true
}

func hangUp(w http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
	return true
}

func (s *flakyShop) then(steps ...func(http.ResponseWriter) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, steps...)
}

// sleeps records the waits a transport asks for instead of waiting.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return nil
}

// retryingTransport never reuses a connection: net/http would itself resend an idempotent
// request whose reused connection was closed, and the tests count attempts.
func retryingTransport(t *testing.T, sl *sleeps, seen *[]Payment) *Transport {
	return &Transport{
		Base:   &http.Transport{DisableKeepAlives: true},
		Payers: []Payer{&exact.Signer{Key: testKey(t)}}, MaxPerRequest: big.NewInt(1000), Budget: NewBudget(big.NewInt(10_000)),
		RetryPolicy: backoff.Policy{Sleep: sl.sleep, Jitter: func() float64 { return 0 }},
		OnPayment:   func(p Payment) { *seen = append(*seen, p) },
	}
}

// TestPaidRetryReusesThePayment: a paid attempt answered 503 with Retry-After is sent again after
// that wait with the very same PAYMENT-SIGNATURE, carrying a payment identifier; the caller sees
// one payment.
func TestPaidRetryReusesThePayment(t *testing.T) {
	s := newFlakyShop(t)
	s.then(nil, status(503, "2"))
	sl := &sleeps{}
	var seen []Payment
	tr := retryingTransport(t, sl, &seen)
	resp, err := (&http.Client{Transport: tr}).Post(s.server.URL, "text/plain", strings.NewReader("the body"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "paid content" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(s.headers) != 2 || s.headers[0] != s.headers[1] || s.bodies[0] != "the body" || s.bodies[1] != "the body" {
		t.Fatalf("attempts %d; same header %v; bodies %q", len(s.headers), len(s.headers) == 2 && s.headers[0] == s.headers[1], s.bodies)
	}
	p, _ := x402.DecodePaymentPayload(s.headers[0], 0)
	if id, err := x402.PaymentIdentifier(p.Extensions); err != nil || !strings.HasPrefix(id, "pay_") {
		t.Fatalf("payment identifier %q %v", id, err)
	}
	if len(sl.waits) != 1 || sl.waits[0] != 2*time.Second {
		t.Fatalf("waits %v, want the server's Retry-After of 2s", sl.waits)
	}
	if len(seen) != 1 || tr.Budget.Spent().Int64() != 1000 {
		t.Fatalf("OnPayment %d times, budget spent %s", len(seen), tr.Budget.Spent())
	}
}

// TestPaidRetryCases: what is retried with the same payment, and what is not.
func TestPaidRetryCases(t *testing.T) {
	cases := []struct {
		name          string
		noIdempotency bool
		maxRetries    int
		script        []func(http.ResponseWriter) bool
		attempts      int
		status        int
		waits         []time.Duration
	}{
		{"connection lost", false, 0, []func(http.ResponseWriter) bool{hangUp, hangUp}, 3, 200, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"502 then 504", false, 0, []func(http.ResponseWriter) bool{status(502, ""), status(504, "")}, 3, 200, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"pending until settled", false, 0, []func(http.ResponseWriter) bool{pending, pending}, 3, 200, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"in progress elsewhere", false, 0, []func(http.ResponseWriter) bool{status(409, "1")}, 2, 200, []time.Duration{time.Second}},
		{"Retry-After bounded by the policy", false, 0, []func(http.ResponseWriter) bool{status(503, "3600")}, 2, 200, []time.Duration{5 * time.Second}},
		{"a 409 without Retry-After is final", false, 0, []func(http.ResponseWriter) bool{status(409, "")}, 1, 409, nil},
		{"pending without an identifier is final", true, 0, []func(http.ResponseWriter) bool{pending}, 1, 402, nil},
		{"retries exhausted: the last answer", false, 2, []func(http.ResponseWriter) bool{status(503, ""), status(503, ""), status(503, "")}, 3, 503, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"retries off", false, -1, []func(http.ResponseWriter) bool{status(503, "")}, 1, 503, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFlakyShop(t)
			s.then(append([]func(http.ResponseWriter) bool{nil}, tc.script...)...) // the 402 first
			sl := &sleeps{}
			var seen []Payment
			tr := retryingTransport(t, sl, &seen)
			tr.NoIdempotency, tr.MaxRetries = tc.noIdempotency, tc.maxRetries
			resp, err := (&http.Client{Transport: tr}).Get(s.server.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.status == 503 && string(body) != "try later") {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if len(s.headers) != tc.attempts {
				t.Fatalf("%d paid attempts, want %d", len(s.headers), tc.attempts)
			}
			for _, h := range s.headers {
				if h != s.headers[0] {
					t.Fatal("a retry carried another payment")
				}
			}
			p, _ := x402.DecodePaymentPayload(s.headers[0], 0)
			if id, _ := x402.PaymentIdentifier(p.Extensions); (id == "") != tc.noIdempotency {
				t.Fatalf("identifier %q with NoIdempotency %v", id, tc.noIdempotency)
			}
			if !equalDurations(sl.waits, tc.waits) {
				t.Fatalf("waits %v, want %v", sl.waits, tc.waits)
			}
			if len(seen) != 1 {
				t.Fatalf("OnPayment called %d times", len(seen))
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestUnpaidRetries: an unpaid GET is resent after 503; an unpaid POST, which the server may
// have acted on, is not.
func TestUnpaidRetries(t *testing.T) {
	s := newFlakyShop(t)
	s.then(status(503, ""))
	sl := &sleeps{}
	var seen []Payment
	tr := retryingTransport(t, sl, &seen)
	resp, err := (&http.Client{Transport: tr}).Get(s.server.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	if s.unpaid != 2 || len(s.headers) != 1 {
		t.Fatalf("unpaid %d, paid %d", s.unpaid, len(s.headers))
	}

	s.then(status(503, ""))
	resp, err = (&http.Client{Transport: tr}).Post(s.server.URL, "text/plain", strings.NewReader("x"))
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	if s.unpaid != 3 {
		t.Fatalf("an unpaid POST was resent (%d unpaid requests)", s.unpaid)
	}
}

// resyncPayer is a Settler that always asks for another payment after a 402.
type resyncPayer struct {
	*exact.Signer
	created int
	settled int
}

func (r *resyncPayer) CreatePayload(req x402.PaymentRequirements, res *x402.ResourceInfo) (*x402.PaymentPayload, error) {
	r.created++
	return r.Signer.CreatePayload(req, res)
}

func (r *resyncPayer) Settled(_ context.Context, _ *x402.PaymentPayload, resp *http.Response, _ error) bool {
	r.settled++
	return resp != nil && resp.StatusCode == http.StatusPaymentRequired
}

// TestNoNewPaymentAfterAnUnansweredAttempt: once an attempt went unanswered, the server may have
// charged it, so a 402 on the retry is handed back instead of paying with a new payment; and the
// budget keeps the amount.
func TestNoNewPaymentAfterAnUnansweredAttempt(t *testing.T) {
	s := newFlakyShop(t)
	corrective := func(w http.ResponseWriter) bool {
		offer := (&shop{price: "1000"}).offer()
		challenge, _ := x402.EncodeHeader(x402.PaymentRequired{X402Version: 2, Error: "stale", Accepts: []x402.PaymentRequirements{offer}})
		w.Header().Set(x402.HeaderPaymentRequired, challenge)
		w.WriteHeader(http.StatusPaymentRequired)
		return true
	}
	s.then(nil, hangUp, corrective)
	payer := &resyncPayer{Signer: &exact.Signer{Key: testKey(t)}}
	sl := &sleeps{}
	tr := &Transport{Base: &http.Transport{DisableKeepAlives: true}, Payers: []Payer{payer}, MaxPerRequest: big.NewInt(1000), Budget: NewBudget(big.NewInt(10_000)),
		RetryPolicy: backoff.Policy{Sleep: sl.sleep}}
	resp, err := (&http.Client{Transport: tr}).Get(s.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 402 || payer.created != 1 || payer.settled != 1 || len(s.headers) != 2 {
		t.Fatalf("status %d, payments created %d, settled %d, attempts %d", resp.StatusCode, payer.created, payer.settled, len(s.headers))
	}
	if tr.Budget.Spent().Int64() != 1000 {
		t.Fatalf("budget spent %s; an attempt that may have been charged stays counted", tr.Budget.Spent())
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Tue, 01 Jan 2030 00:00:10 GMT": 10 * time.Second,
		"Mon, 31 Dec 2029 00:00:00 GMT": 0,
	}
	for v, want := range cases {
		if got := retryAfter(v, now); got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
}
