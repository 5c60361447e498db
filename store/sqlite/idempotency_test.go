package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// TestRelaxedIdempotencyWritesRestoreDurability: claims, answers and releases of payment
// identifiers commit without waiting for the disk, and leave the writer as durable as before
// (synchronous=FULL) for every other write; the records are there after a reopen.
func TestRelaxedIdempotencyWritesRestoreDurability(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "payper.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"a", "b"} {
		c := store.IdempotencyClaim{Key: "pay_relaxed_" + owner + "_0000000", Fingerprint: "fp", Owner: owner, Lease: time.Minute, TTL: time.Hour, Relaxed: true}
		if _, claimed, err := s.ClaimIdempotencyKey(ctx, c); err != nil || !claimed {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		if err := s.UpdateIdempotentResponse(ctx, store.IdempotencyUpdate{Key: c.Key, Owner: owner, From: store.IdempotencyInFlight,
			To: store.IdempotencyComplete, Status: 200, Body: []byte("kept"), Relaxed: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReleaseIdempotencyKey(ctx, "pay_relaxed_b_0000000", "b"); err != nil {
		t.Fatal(err)
	}
	if level, err := s.WriterSynchronous(ctx); err != nil || level != 2 {
		t.Fatalf("writer synchronous = %d (%v) after relaxed writes, want 2 (FULL)", level, err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.GetIdempotentResponse(ctx, "pay_relaxed_a_0000000"); err != nil || string(r.Body) != "kept" {
		t.Fatalf("after reopen: %+v %v", r, err)
	}
	if _, err := s.GetIdempotentResponse(ctx, "pay_relaxed_b_0000000"); err == nil {
		t.Fatal("a released record came back")
	}
}

// TestGroupedWritesIgnoreOneCallerGivingUp: relaxed writes share transactions; a caller whose
// context is already cancelled must not fail the others' (nor be left in doubt itself).
func TestGroupedWritesIgnoreOneCallerGivingUp(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := t.Context()
			if i%2 == 1 {
				ctx = cancelled
			}
			c := store.IdempotencyClaim{Key: fmt.Sprintf("pay_grouped_%010d", i), Fingerprint: "fp", Owner: "o", Lease: time.Minute, TTL: time.Hour, Relaxed: true}
			_, _, errs[i] = s.ClaimIdempotencyKey(ctx, c)
		})
	}
	wg.Wait()
	for i := 0; i < n; i += 2 {
		if errs[i] != nil {
			t.Fatalf("claim %d failed: %v", i, errs[i])
		}
		if _, err := s.GetIdempotentResponse(t.Context(), fmt.Sprintf("pay_grouped_%010d", i)); err != nil {
			t.Fatalf("claim %d not stored: %v", i, err)
		}
	}
}
