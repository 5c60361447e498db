package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/payper/payper/store"
)

// testSurvivesReopen: everything is on disk, including the replay guard.
func testSurvivesReopen(t *testing.T, h *harness) {
	first := h.store(t)
	ctx := t.Context()
	submitted := mustReserve(t, first, newPayment(1))
	must(t, "submit", first.MarkSubmitted(ctx, submitted, txHash(1)))
	released := mustReserve(t, first, newPayment(2))
	must(t, "release", first.ReleasePayment(ctx, released, reasonReleased))
	wantSubmitted := *mustGet(t, first, submitted)
	wantReleased := *mustGet(t, first, released)
	must(t, "Close", first.Close())

	second := h.store(t)
	checkPayment(t, mustGet(t, second, submitted), wantSubmitted)
	checkPayment(t, mustGet(t, second, released), wantReleased)
	_, err := second.ReservePayment(ctx, newPayment(1))
	wantErr(t, "replay after restart", err, store.ErrDuplicate)
	unfinished, err := second.UnfinishedPayments(ctx)
	must(t, "UnfinishedPayments", err)
	checkIDs(t, "recovery after restart", unfinished, submitted)
	must(t, "settle after restart", second.MarkSettled(ctx, submitted, txHash(1)))
	if id := mustReserve(t, second, newPayment(2)); id <= released {
		t.Fatalf("new id %d not above earlier id %d", id, released)
	}
}

// testClosedStoreIsUnavailable: a closed store fails closed on every call.
func testClosedStoreIsUnavailable(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	id := mustReserve(t, s, newPayment(1))
	must(t, "Ping", s.Ping(ctx))
	must(t, "Close", s.Close())
	must(t, "second Close", s.Close())

	calls := map[string]func() error{
		"ReservePayment": func() error { _, err := s.ReservePayment(ctx, newPayment(2)); return err },
		"MarkSubmitted":  func() error { return s.MarkSubmitted(ctx, id, txHash(1)) },
		"MarkSettled":    func() error { return s.MarkSettled(ctx, id, txHash(1)) },
		"MarkFailed":     func() error { return s.MarkFailed(ctx, id, reasonFailed) },
		"ReleasePayment": func() error { return s.ReleasePayment(ctx, id, reasonReleased) },
		"GetPayment":     func() error { _, err := s.GetPayment(ctx, id); return err },
		"FindPayment": func() error {
			_, err := s.FindPayment(ctx, testNetwork, testAsset, testAccount0, nonce(1))
			return err
		},
		"ListPayments":       func() error { _, err := s.ListPayments(ctx, store.PaymentFilter{}); return err },
		"UnfinishedPayments": func() error { _, err := s.UnfinishedPayments(ctx); return err },
		"Ping":               func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		wantErr(t, name+" after Close", call(), store.ErrUnavailable)
	}
}

// testCanceledContext: a canceled request reports unavailability with the
// cause attached, and writes nothing.
func testCanceledContext(t *testing.T, h *harness) {
	s := h.store(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.ReservePayment(ctx, newPayment(1))
	wantErr(t, "ReservePayment with canceled context", err, store.ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v does not carry context.Canceled", err)
	}
	_, err = s.GetPayment(ctx, 1)
	wantErr(t, "GetPayment with canceled context", err, store.ErrUnavailable)
	mustReserve(t, s, newPayment(1))
}
