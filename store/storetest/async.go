package storetest

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// asyncPayment is newPayment(n) for payer, reserved in the async flow with a payload.
func asyncPayment(n int, payer string, amount int64) *store.Payment {
	p := newPayment(n)
	p.Payer, p.Amount, p.Payload = payer, big.NewInt(amount), `{"signature":"0x01","n":`+big.NewInt(int64(n)).String()+`}`
	return p
}

func limits(perPayer, total int64) store.AsyncLimits {
	return store.AsyncLimits{PerPayer: big.NewInt(perPayer), Total: big.NewInt(total), BlockFor: time.Hour}
}

func wantExposure(t *testing.T, s store.Store, payer string, want int64) store.Exposure {
	t.Helper()
	e, err := s.AsyncExposure(t.Context(), payer)
	must(t, "AsyncExposure", err)
	if e.Unsettled.Int64() != want {
		t.Fatalf("exposure of %q: %s, want %d", payer, e.Unsettled, want)
	}
	return e
}

// testAsyncLifecycle: an async reservation keeps its payload and counts against the bounds
// until it settles, fails or is released; a queued payment is never released; a failure
// blocks the payer for BlockFor.
func testAsyncLifecycle(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	l := limits(3000, 5000)
	a := asyncPayment(1, testAccount0, 1000)
	id, err := s.ReserveAsyncPayment(ctx, a, l)
	must(t, "ReserveAsyncPayment", err)
	got := mustGet(t, s, id)
	want := expectReserved(*asyncPayment(1, testAccount0, 1000), id, h.clock.Now())
	checkPayment(t, got, want)
	if !got.Async || got.Queued || got.Payload != a.Payload || a.ID != id || !a.Async {
		t.Fatalf("async fields: %+v", got)
	}
	wantExposure(t, s, testAccount0, 1000)
	wantExposure(t, s, "", 1000)

	// The replay guard holds for async payments too.
	_, err = s.ReserveAsyncPayment(ctx, asyncPayment(1, testAccount0, 1000), l)
	wantErr(t, "async duplicate", err, store.ErrDuplicate)
	_, err = s.ReservePayment(ctx, asyncPayment(1, testAccount0, 1000))
	wantErr(t, "sync duplicate of an async payment", err, store.ErrDuplicate)
	wantExposure(t, s, testAccount0, 1000)

	// Bounds: per payer (3000) and in total (5000).
	id2, err := s.ReserveAsyncPayment(ctx, asyncPayment(2, testAccount0, 2000), l)
	must(t, "second reservation, at the payer's bound", err)
	_, err = s.ReserveAsyncPayment(ctx, asyncPayment(3, testAccount0, 1), l)
	wantErr(t, "over the payer's bound", err, store.ErrLimit)
	id4, err := s.ReserveAsyncPayment(ctx, asyncPayment(4, testAccount2, 2000), l)
	must(t, "another payer, at the total", err)
	_, err = s.ReserveAsyncPayment(ctx, asyncPayment(5, testAccount3, 1), l)
	wantErr(t, "over the total", err, store.ErrLimit)
	if _, err := s.GetPayment(ctx, id4+1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused reservation left a record: %v", err)
	}
	wantExposure(t, s, "", 5000)

	// Released before being served: the value comes off.
	must(t, "release", s.ReleasePayment(ctx, id4, "upstream_status"))
	wantExposure(t, s, testAccount2, 0)
	wantExposure(t, s, "", 3000)

	// Queued: served, so never released; sent, then settled, the value comes off.
	must(t, "queue", s.QueuePayment(ctx, id))
	wantErr(t, "queue again a payment sent meanwhile", s.QueuePayment(ctx, id4), store.ErrConflict)
	wantErr(t, "release a queued payment", s.ReleasePayment(ctx, id, "recovered_unsent"), store.ErrConflict)
	queued, err := s.QueuedPayments(ctx, 0, 10)
	must(t, "QueuedPayments", err)
	if len(queued) != 1 || queued[0].ID != id || !queued[0].Queued || queued[0].Payload != a.Payload {
		t.Fatalf("queue: %+v", queued)
	}
	if after, err := s.QueuedPayments(ctx, id, 10); err != nil || len(after) != 0 {
		t.Fatalf("queued payments after the last one: %+v, %v", after, err)
	}
	if before, err := s.QueuedPayments(ctx, id-1, 10); err != nil || len(before) != 1 || before[0].ID != id {
		t.Fatalf("queued payments after the one before: %+v, %v", before, err)
	}
	must(t, "first submission of a transaction that never went out", s.MarkFirstSubmitted(ctx, id, txHash(7)))
	wantErr(t, "requeue under another hash", s.RequeuePayment(ctx, id, txHash(8)), store.ErrConflict)
	must(t, "requeue", s.RequeuePayment(ctx, id, txHash(7)))
	if p := mustGet(t, s, id); p.Status != store.StatusReserved || p.TxHash != txHash(7) || !p.Queued {
		t.Fatalf("requeued payment %+v", p)
	}
	wantExposure(t, s, "", 3000)
	must(t, "first submission", s.MarkFirstSubmitted(ctx, id, txHash(1)))
	must(t, "first submission repeated", s.MarkFirstSubmitted(ctx, id, txHash(1)))
	wantErr(t, "a second sender's submission", s.MarkFirstSubmitted(ctx, id, txHash(2)), store.ErrConflict)
	if queued, _ := s.QueuedPayments(ctx, 0, 10); len(queued) != 0 {
		t.Fatalf("a sent payment is still queued: %+v", queued)
	}
	must(t, "settle", s.MarkSettled(ctx, id, txHash(1)))
	must(t, "settle repeated", s.MarkSettled(ctx, id, txHash(1)))
	wantExposure(t, s, testAccount0, 2000)
	wantExposure(t, s, "", 2000)
	must(t, "vanish", s.MarkVanished(ctx, id, "reorg"))
	must(t, "settle again", s.MarkSettled(ctx, id, txHash(1)))
	wantExposure(t, s, "", 2000) // a settlement coming back does not count twice

	// Failed after being served: the value comes off and the payer is blocked for BlockFor.
	must(t, "queue the second", s.QueuePayment(ctx, id2))
	must(t, "fail", s.MarkFailed(ctx, id2, "invalid_exact_evm_insufficient_balance"))
	e := wantExposure(t, s, testAccount0, 0)
	if !e.BlockedAt.Equal(stored(h.clock.Now())) {
		t.Fatalf("blocked at %v, want %v", e.BlockedAt, h.clock.Now())
	}
	wantExposure(t, s, "", 0)
	_, err = s.ReserveAsyncPayment(ctx, asyncPayment(6, testAccount0, 1000), l)
	wantErr(t, "a blocked payer", err, store.ErrBlocked)
	must(t, "a blocked payer still pays synchronously", func() error { _, err := s.ReservePayment(ctx, asyncPayment(7, testAccount0, 1000)); return err }())
	h.clock.Advance(time.Hour)
	_, err = s.ReserveAsyncPayment(ctx, asyncPayment(8, testAccount0, 1000), l)
	must(t, "unblocked after BlockFor", err)

	// A synchronous payment is not queued and never counted.
	sync := mustReserve(t, s, newPayment(9))
	wantErr(t, "queue a synchronous payment", s.QueuePayment(ctx, sync), store.ErrConflict)
	must(t, "settle a synchronous payment", s.MarkSettled(ctx, sync, txHash(3)))
	wantExposure(t, s, "", 1000)

	_, err = s.ReserveAsyncPayment(ctx, newPayment(10), l)
	wantErr(t, "no payload", err, store.ErrInvalid)
	if _, err := s.ReserveAsyncPayment(ctx, asyncPayment(11, testAccount1, 1), store.AsyncLimits{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no limits: %v", err)
	}
}

// testAsyncBoundsRace: reservations racing on two handles (two replicas) never take a payer
// past its bound, or everybody past the total; payments finishing meanwhile give their value
// back exactly once.
func testAsyncBoundsRace(t *testing.T, h *harness) {
	a, b := h.store(t), h.store(t)
	ctx := t.Context()
	l := limits(5000, 12000)
	payers := []string{testAccount0, testAccount2, testAccount3}
	var mu sync.Mutex
	won := map[string]int{}
	var ids []int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			payer := payers[i%len(payers)]
			id, err := reserveAsyncRetrying(ctx, s, asyncPayment(100+i, payer, 1000), l)
			switch {
			case errors.Is(err, store.ErrLimit):
			case err != nil:
				t.Errorf("reservation %d: %v", i, err)
			default:
				mu.Lock()
				won[payer]++
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	for payer, n := range won {
		if n > 5 {
			t.Fatalf("payer %s got %d reservations of 1000 under a bound of 5000", payer, n)
		}
		total += n
		wantExposure(t, a, payer, int64(n)*1000)
	}
	if total != 12 {
		t.Fatalf("%d reservations of 1000 under a total bound of 12000 with room for 15 per payer", total)
	}
	wantExposure(t, a, "", 12000)
	for i, id := range ids {
		s := a
		if i%2 == 1 {
			s = b
		}
		must(t, "queue", s.QueuePayment(ctx, id))
		must(t, "settle", s.MarkSettled(ctx, id, txHash(i+1)))
	}
	wantExposure(t, b, "", 0)
}

// reserveAsyncRetrying retries a reservation the backend refused as unavailable because of
// contention it gave up on (SQLite's lock between two handles), as the caller would retry
// with 503.
func reserveAsyncRetrying(ctx context.Context, s store.Store, p *store.Payment, l store.AsyncLimits) (int64, error) {
	for attempt := 0; ; attempt++ {
		id, err := s.ReserveAsyncPayment(ctx, p, l)
		if !errors.Is(err, store.ErrUnavailable) || attempt == 20 || !strings.Contains(strings.ToLower(err.Error()), "lock") {
			return id, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testAsyncConcurrentLifecycle: many async payments go through their whole life at once on a
// fresh handle, each step racing the others' (and the first use of each statement): every one
// ends settled, with its value given back, and nothing waits for ever.
func testAsyncConcurrentLifecycle(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	l := limits(1_000_000, 1_000_000)
	payers := []string{testAccount0, testAccount2, testAccount3}
	const n = 48
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := reserveAsyncRetrying(ctx, s, asyncPayment(300+i, payers[i%len(payers)], 1000), l)
			if err != nil {
				t.Errorf("reservation %d: %v", i, err)
				return
			}
			for _, step := range []struct {
				name string
				run  func() error
			}{
				{"queue", func() error { return s.QueuePayment(ctx, id) }},
				{"first submission", func() error { return s.MarkFirstSubmitted(ctx, id, txHash(i+1)) }},
				{"settle", func() error { return s.MarkSettled(ctx, id, txHash(i+1)) }},
			} {
				if err := step.run(); err != nil {
					t.Errorf("payment %d: %s: %v", i, step.name, err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("concurrent async payments never finished: a write waits for ever")
	}
	wantExposure(t, s, "", 0)
}
