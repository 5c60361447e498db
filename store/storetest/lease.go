package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// testLeases: one holder at a time, across handles; the holder extends it; a released or lapsed
// lease goes to the next asker; releasing someone else's lease does nothing.
func testLeases(t *testing.T, h *harness) {
	a, b := h.store(t), h.store(t)
	ctx := t.Context()
	take := func(s store.Store, holder string, want bool) {
		t.Helper()
		got, err := s.AcquireLease(ctx, "claims", holder, time.Minute)
		if err != nil || got != want {
			t.Fatalf("%s acquires: %v %v, want %v", holder, got, err, want)
		}
	}
	take(a, "replica-a", true)
	take(b, "replica-b", false)
	take(a, "replica-a", true) // extends it
	if err := b.ReleaseLease(ctx, "claims", "replica-b"); err != nil {
		t.Fatal(err)
	}
	take(b, "replica-b", false) // b's release of a lease it does not hold changed nothing
	if err := a.ReleaseLease(ctx, "claims", "replica-a"); err != nil {
		t.Fatal(err)
	}
	take(b, "replica-b", true)
	// b dies holding it: once its time runs out, a may take it.
	h.clock.Advance(59 * time.Second)
	take(a, "replica-a", false)
	h.clock.Advance(time.Second)
	take(a, "replica-a", true)
	if ok, err := a.AcquireLease(ctx, "other", "replica-b", time.Minute); err != nil || !ok {
		t.Fatalf("leases are per name: %v %v", ok, err)
	}
	if _, err := a.AcquireLease(ctx, "claims", "", time.Minute); err == nil {
		t.Fatal("a lease without a holder must be refused")
	}

	// Many askers at once on two handles: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(s store.Store, i int) {
			defer wg.Done()
			ok, err := s.AcquireLease(ctx, "race", string(rune('a'+i)), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}([]store.Store{a, b}[i%2], i)
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d askers won one lease", winners)
	}
}
