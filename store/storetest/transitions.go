package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

func txHash(n int) string {
	return fmt.Sprintf("0x%064x", 0x7700+n)
}

const (
	reasonFailed   = "invalid_exact_evm_transaction_failed"
	reasonReleased = "upstream_error"
	reasonVanished = "transaction_vanished"
	reasonNew      = "settlement_timeout"
)

// setups bring a fresh payment into each state.
var setups = map[store.PaymentStatus]func(ctx context.Context, s store.Store, id int64) error{
	store.StatusReserved: func(context.Context, store.Store, int64) error { return nil },
	store.StatusSubmitted: func(ctx context.Context, s store.Store, id int64) error {
		return s.MarkSubmitted(ctx, id, txHash(1))
	},
	store.StatusSettled: func(ctx context.Context, s store.Store, id int64) error {
		if err := s.MarkSubmitted(ctx, id, txHash(1)); err != nil {
			return err
		}
		return s.MarkSettled(ctx, id, txHash(1))
	},
	store.StatusFailed: func(ctx context.Context, s store.Store, id int64) error {
		return s.MarkFailed(ctx, id, reasonFailed)
	},
	store.StatusReleased: func(ctx context.Context, s store.Store, id int64) error {
		return s.ReleasePayment(ctx, id, reasonReleased)
	},
	store.StatusVanished: func(ctx context.Context, s store.Store, id int64) error {
		if err := s.MarkSettled(ctx, id, txHash(1)); err != nil {
			return err
		}
		return s.MarkVanished(ctx, id, reasonVanished)
	},
}

type operation struct {
	name  string
	apply func(ctx context.Context, s store.Store, id int64) error
}

var (
	submit1 = operation{"MarkSubmitted(h1)", func(ctx context.Context, s store.Store, id int64) error { return s.MarkSubmitted(ctx, id, txHash(1)) }}
	submit2 = operation{"MarkSubmitted(h2)", func(ctx context.Context, s store.Store, id int64) error { return s.MarkSubmitted(ctx, id, txHash(2)) }}
	settle1 = operation{"MarkSettled(h1)", func(ctx context.Context, s store.Store, id int64) error { return s.MarkSettled(ctx, id, txHash(1)) }}
	settle2 = operation{"MarkSettled(h2)", func(ctx context.Context, s store.Store, id int64) error { return s.MarkSettled(ctx, id, txHash(2)) }}
	fail    = operation{"MarkFailed", func(ctx context.Context, s store.Store, id int64) error { return s.MarkFailed(ctx, id, reasonNew) }}
	release = operation{"ReleasePayment", func(ctx context.Context, s store.Store, id int64) error { return s.ReleasePayment(ctx, id, reasonNew) }}
	vanish  = operation{"MarkVanished", func(ctx context.Context, s store.Store, id int64) error { return s.MarkVanished(ctx, id, reasonNew) }}
)

// outcome is the record after an operation. changed means UpdatedAt moves
// to the operation's time; a conflict or an idempotent repeat leaves the
// row untouched.
type outcome struct {
	err     error
	status  store.PaymentStatus
	hash    string
	reason  string
	changed bool
}

// untouched is the record each setup leaves.
var untouched = map[store.PaymentStatus]outcome{
	store.StatusReserved:  {status: store.StatusReserved},
	store.StatusSubmitted: {status: store.StatusSubmitted, hash: txHash(1)},
	store.StatusSettled:   {status: store.StatusSettled, hash: txHash(1)},
	store.StatusFailed:    {status: store.StatusFailed, reason: reasonFailed},
	store.StatusReleased:  {status: store.StatusReleased, reason: reasonReleased},
	store.StatusVanished:  {status: store.StatusVanished, hash: txHash(1), reason: reasonVanished},
}

func conflict(from store.PaymentStatus) outcome {
	o := untouched[from]
	o.err = store.ErrConflict
	return o
}

func testTransitions(t *testing.T, h *harness) {
	s := h.store(t)
	R, U, S, F, X, V := store.StatusReserved, store.StatusSubmitted, store.StatusSettled, store.StatusFailed, store.StatusReleased, store.StatusVanished
	cases := []struct {
		from store.PaymentStatus
		op   operation
		want outcome
	}{
		{R, submit1, outcome{status: U, hash: txHash(1), changed: true}},
		{R, settle1, outcome{status: S, hash: txHash(1), changed: true}},
		{R, fail, outcome{status: F, reason: reasonNew, changed: true}},
		{R, release, outcome{status: X, reason: reasonNew, changed: true}},
		{R, vanish, conflict(R)},

		{U, submit1, untouched[U]},                                       // idempotent repeat
		{U, submit2, outcome{status: U, hash: txHash(2), changed: true}}, // replacement tx
		{U, settle1, outcome{status: S, hash: txHash(1), changed: true}},
		{U, settle2, outcome{status: S, hash: txHash(2), changed: true}}, // replacement tx
		{U, fail, outcome{status: F, hash: txHash(1), reason: reasonNew, changed: true}},
		{U, release, conflict(U)}, // it may already be on chain
		{U, vanish, conflict(U)},  // only what was settled can vanish

		{S, submit1, conflict(S)},
		{S, submit2, conflict(S)},
		{S, settle1, untouched[S]}, // idempotent repeat
		{S, settle2, conflict(S)},
		{S, fail, conflict(S)},
		{S, release, conflict(S)},
		{S, vanish, outcome{status: V, hash: txHash(1), reason: reasonNew, changed: true}},

		{F, submit1, conflict(F)},
		{F, settle1, conflict(F)},
		{F, fail, conflict(F)},
		{F, release, conflict(F)},
		{F, vanish, conflict(F)},

		{X, submit1, conflict(X)},
		{X, settle1, conflict(X)},
		{X, fail, conflict(X)},
		{X, release, conflict(X)},
		{X, vanish, conflict(X)},

		{V, vanish, untouched[V]}, // repeat keeps the first reason
		{V, settle1, outcome{status: S, hash: txHash(1), changed: true}}, // back on chain
		{V, settle2, outcome{status: S, hash: txHash(2), changed: true}}, // found under another hash
		{V, submit1, conflict(V)},
		{V, fail, conflict(V)},
		{V, release, conflict(V)},
	}
	for i, tc := range cases {
		name := fmt.Sprintf("%s then %s", tc.from, tc.op.name)
		ctx := t.Context()
		h.clock.Advance(time.Second)
		id := mustReserve(t, s, newPayment(100+i))
		must(t, name+": setup", setups[tc.from](ctx, s, id))
		before := mustGet(t, s, id)
		want := untouched[tc.from]
		if before.Status != want.status || before.TxHash != want.hash || before.ErrorReason != want.reason {
			t.Fatalf("%s: setup left %s %q %q", name, before.Status, before.TxHash, before.ErrorReason)
		}

		h.clock.Advance(time.Second)
		err := tc.op.apply(ctx, s, id)
		if tc.want.err == nil {
			must(t, name, err)
		} else {
			wantErr(t, name, err, tc.want.err)
		}
		after := mustGet(t, s, id)
		expect := *before
		expect.Status, expect.TxHash, expect.ErrorReason = tc.want.status, tc.want.hash, tc.want.reason
		if tc.want.changed {
			expect.UpdatedAt = stored(h.clock.Now())
		}
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) { checkPayment(t, after, expect) })
	}
}

// testTransitionArguments: hashes are normalised; an empty hash is refused.
func testTransitionArguments(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	id := mustReserve(t, s, newPayment(1))
	wantErr(t, "MarkSubmitted without hash", s.MarkSubmitted(ctx, id, ""), store.ErrInvalid)
	wantErr(t, "MarkSettled without hash", s.MarkSettled(ctx, id, ""), store.ErrInvalid)
	if got := mustGet(t, s, id); got.Status != store.StatusReserved {
		t.Fatalf("refused calls changed status to %s", got.Status)
	}

	upper := "0x" + strings.ToUpper(txHash(5)[2:])
	must(t, "MarkSubmitted", s.MarkSubmitted(ctx, id, upper))
	must(t, "MarkSubmitted again, other case", s.MarkSubmitted(ctx, id, txHash(5)))
	must(t, "MarkSettled", s.MarkSettled(ctx, id, upper))
	must(t, "MarkSettled again, other case", s.MarkSettled(ctx, id, txHash(5)))
	if got := mustGet(t, s, id); got.TxHash != txHash(5) || got.Status != store.StatusSettled {
		t.Fatalf("got %s %q, want settled %q", got.Status, got.TxHash, txHash(5))
	}
}

func testUnknownID(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	const missing = 987654321
	mustReserve(t, s, newPayment(1))
	_, err := s.GetPayment(ctx, missing)
	wantErr(t, "GetPayment", err, store.ErrNotFound)
	for _, op := range []operation{submit1, settle1, fail, release, vanish} {
		wantErr(t, op.name, op.apply(ctx, s, missing), store.ErrNotFound)
	}
}
