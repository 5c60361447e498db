package paywall

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/x402"
)

// TestPendingChargeIsResumedByRetries is x402 issue #1062 at the paywall: the first answer is
// "pending" with the response withheld and kept; retries ask the charge and run nothing again;
// once it settled, the retry gets the kept response; a charge that failed is reported and frees
// the identifier.
func TestPendingChargeIsResumedByRetries(t *testing.T) {
	f := newIdemFixture(t, nil)
	f.method.set(true, "pending")
	header := f.payment(t, "t1", payID)
	first := f.send(t, "GET", "/v1/quote", header)
	if first.status != 402 || strings.Contains(first.body, "hello") || first.settlement == nil ||
		first.settlement.ErrorReason != string(x402.ReasonSettlementPending) {
		t.Fatalf("first: %+v", first)
	}
	if r, _ := f.store.record(payID); r.State != KeptCharging || r.Leased || r.ChargeRef != "cash:t1" || string(r.Body) != "hello" {
		t.Fatalf("kept record %+v", r)
	}
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 402 || a.settlement.ErrorReason != string(x402.ReasonSettlementPending) {
		t.Fatalf("retry while pending: %+v", a)
	}
	f.method.set(false, "down")
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("retry while the ledger is down: %+v", a)
	}
	f.method.set(false, "settled")
	for i := range 2 {
		a := f.send(t, "GET", "/v1/quote", header)
		if a.status != 200 || a.body != "hello" || a.header.Get("X-Upstream") != "yes" || a.settlement == nil ||
			!a.settlement.Success || a.settlement.Transaction != "tx-t1" {
			t.Fatalf("retry %d after settlement: %+v", i, a)
		}
	}
	if f.upstreamCalls() != 1 || f.method.resumeCalls != 3 {
		t.Fatalf("upstream %d calls, %d resumes; want 1 and 3 (a complete record is not resumed again)", f.upstreamCalls(), f.method.resumeCalls)
	}

	g := newIdemFixture(t, nil)
	g.method.set(true, "failed")
	header = g.payment(t, "t1", payID)
	g.send(t, "GET", "/v1/quote", header)
	if a := g.send(t, "GET", "/v1/quote", header); a.status != 402 || a.settlement == nil || a.settlement.ErrorReason != "cash_bounced" {
		t.Fatalf("retry of a failed charge: %+v", a)
	}
	if _, ok := g.store.record(payID); ok {
		t.Fatal("a failed charge kept its identifier")
	}
}

// TestReleasedChargeRunsAgain: a kept charge that recovery gave back unsent (its request died
// before sending it) frees the identifier, and the retry is served as a new request at once.
func TestReleasedChargeRunsAgain(t *testing.T) {
	f := newIdemFixture(t, nil)
	f.method.set(true, "pending")
	header := f.payment(t, "t1", payID)
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 402 {
		t.Fatalf("first: %+v", a)
	}
	f.method.set(false, "released")
	a := f.send(t, "GET", "/v1/quote", header)
	if a.status != 200 || a.body != "hello" || a.header.Get(HeaderReplayed) != "" || a.settlement == nil || !a.settlement.Success {
		t.Fatalf("retry after the release: %+v", a)
	}
	if f.upstreamCalls() != 2 {
		t.Fatalf("upstream called %d times, want 2", f.upstreamCalls())
	}
	if r, _ := f.store.record(payID); r.State != KeptComplete {
		t.Fatalf("record %+v", r)
	}
}

// TestResponseNotKeptMeansNotCharged: when the store cannot keep the response of a charge that
// may end pending, the charge is released and the caller told to retry.
func TestResponseNotKeptMeansNotCharged(t *testing.T) {
	f := newIdemFixture(t, nil)
	f.mu.Lock()
	f.hold, f.entered = make(chan struct{}), make(chan struct{}, 1)
	f.mu.Unlock()
	done := make(chan answer, 1)
	go func() { done <- f.send(t, "GET", "/v1/quote", f.payment(t, "t1", payID)) }()
	<-f.entered
	f.store.setFail(errStoreDown)
	close(f.hold)
	if a := <-done; a.status != 503 || a.header.Get("Retry-After") == "" || a.body == "hello" {
		t.Fatalf("answer: %+v", a)
	}
	if got := strings.Join(f.method.events, ","); got != "authorize /v1/quote,cancel response_not_kept" {
		t.Fatalf("events %s", got)
	}
	if a := f.send(t, "GET", "/v1/quote", f.payment(t, "t2", "pay_store_down_00000001")); a.status != 503 {
		t.Fatalf("claim with the store down: %+v", a)
	}
}

// TestDeadRequestIsTakenOver: a request that died in flight (its lease ran out) does not block
// the identifier: the retry of the same payment runs.
func TestDeadRequestIsTakenOver(t *testing.T) {
	f := newIdemFixture(t, func(o *Idempotency) { o.Wait = time.Millisecond })
	header := f.payment(t, "t1", payID)
	if _, claimed, err := f.store.ClaimPaymentID(t.Context(), PaymentIDClaim{ID: payID, Fingerprint: fingerprintOf(t, f, header), Owner: "dead", Lease: time.Minute, TTL: time.Hour}); !claimed || err != nil {
		t.Fatal(claimed, err)
	}
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 409 || a.errCode != "payment_in_progress" {
		t.Fatalf("within the lease: %+v", a)
	}
	f.store.advance(time.Minute)
	if a := f.send(t, "GET", "/v1/quote", header); a.status != 200 || a.body != "hello" {
		t.Fatalf("after the lease: %+v", a)
	}
}

func fingerprintOf(t *testing.T, f *idemFixture, header string) string {
	t.Helper()
	req := httptest.NewRequest("GET", f.server.URL+"/v1/quote", nil)
	fp, err := requestFingerprint(header, 0, req)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}
