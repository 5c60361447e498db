package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/store/sqlite"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestKeptResponsesAdapter: the paywall sees the store's records and errors in its own terms,
// and the purge removes every expired record in batches.
func TestKeptResponsesAdapter(t *testing.T) {
	clock := &testClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	kept := keptResponses{st}
	claim := paywall.PaymentIDClaim{ID: "pay_adapter_test_000001", Fingerprint: "fp", Owner: "a", Lease: time.Minute, TTL: time.Hour}
	if r, claimed, err := kept.ClaimPaymentID(ctx, claim); err != nil || !claimed || r.State != paywall.KeptInFlight || !r.Leased {
		t.Fatalf("claim: %+v %v %v", r, claimed, err)
	}
	update := paywall.KeptUpdate{ID: claim.ID, Owner: "b", From: paywall.KeptInFlight, To: paywall.KeptComplete, Status: 200, Body: []byte("x")}
	if err := kept.UpdateKeptResponse(ctx, update); !errors.Is(err, paywall.ErrKeptConflict) {
		t.Fatalf("update by another owner: %v", err)
	}
	update.Owner = "a"
	if err := kept.UpdateKeptResponse(ctx, update); err != nil {
		t.Fatal(err)
	}
	if r, err := kept.KeptResponse(ctx, claim.ID); err != nil || r.State != paywall.KeptComplete || string(r.Body) != "x" || r.Status != 200 {
		t.Fatalf("read back: %+v %v", r, err)
	}
	if _, err := kept.KeptResponse(ctx, "pay_adapter_unknown_0001"); !errors.Is(err, paywall.ErrKeptNotFound) {
		t.Fatalf("unknown id: %v", err)
	}

	for i := range 5 {
		c := claim
		c.ID, c.TTL = fmt.Sprintf("pay_adapter_purge_%05d", i), time.Minute
		if _, _, err := kept.ClaimPaymentID(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(2 * time.Minute)
	if n, err := purgeExpired(ctx, st, 2); err != nil || n != 5 {
		t.Fatalf("purged %d, %v; want the 5 expired records", n, err)
	}
	if _, err := kept.KeptResponse(ctx, claim.ID); err != nil {
		t.Fatalf("a live record was purged: %v", err)
	}
}
