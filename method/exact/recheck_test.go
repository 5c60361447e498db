package exactmethod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
	"github.com/payper/payper/x402"
)

// chainView answers the reconciler's lookups from a table. It stands in for a chain that
// reorganises, drops or re-mines transactions, which the dev chain cannot be made to do on cue;
// the ledger is a real SQLite store.
type chainView struct {
	mu    sync.Mutex
	txs   map[common.Hash]txn.Status
	used  map[common.Hash]bool // authorization nonces used on chain
	fails map[common.Hash]bool // lookups that fail
	Chain                      // the rest is not used by the re-check
}

func (c *chainView) LookupTx(_ context.Context, hash common.Hash) (txn.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fails[hash] {
		return txn.Status{}, errors.New("rpc: upstream timeout")
	}
	return c.txs[hash], nil
}

func (c *chainView) AuthorizationState(_ context.Context, _, _ common.Address, nonce common.Hash) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used[nonce], nil
}

func mined(status uint64) txn.Status {
	return txn.Status{Receipt: &types.Receipt{Status: status, BlockNumber: big.NewInt(7)}}
}

// fixture is a real store holding settled payments, a chain view and a reconciler over both.
type fixture struct {
	t     *testing.T
	store *sqlite.Store
	chain *chainView
	rec   *Reconciler
	logs  *logRecorder
	clock time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, clock: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC), logs: &logRecorder{},
		chain: &chainView{txs: map[common.Hash]txn.Status{}, used: map[common.Hash]bool{}, fails: map[common.Hash]bool{}}}
	now := func() time.Time { return f.clock }
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	f.rec = &Reconciler{Ledger: st, Chain: f.chain, Now: now, Logger: slog.New(f.logs)}
	return f
}

// settled records a settled payment with transaction n and authorization nonce n, mined as given.
func (f *fixture) settled(n int, on txn.Status) store.Payment {
	f.t.Helper()
	ctx := f.t.Context()
	p := &store.Payment{Scheme: "exact", Network: "eip155:1337", Asset: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
		Payer: "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", PayTo: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
		Amount: big.NewInt(1000), Nonce: hash(n).Hex(), ValidBefore: f.clock.Add(time.Minute),
		Method: "GET", Route: "/v1/quote", Resource: "/v1/quote"}
	id, err := f.store.ReservePayment(ctx, p)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.MarkSettled(ctx, id, hash(n).Hex()); err != nil {
		f.t.Fatal(err)
	}
	f.chain.txs[hash(n)] = on
	got, err := f.store.GetPayment(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return *got
}

func hash(n int) common.Hash { return common.HexToHash(fmt.Sprintf("0x%x", 0xabc000+n)) }

func (f *fixture) status(p store.Payment) (store.PaymentStatus, string) {
	f.t.Helper()
	got, err := f.store.GetPayment(f.t.Context(), p.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return got.Status, got.ErrorReason
}

// recheck advances the clock past MinAge and runs one round.
func (f *fixture) recheck() int {
	f.t.Helper()
	f.clock = f.clock.Add(5 * time.Minute)
	n, err := f.rec.RecheckOnce(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestRecheckMarksWhatLeftTheChain(t *testing.T) {
	f := newFixture(t)
	onChain := f.settled(1, mined(types.ReceiptStatusSuccessful))
	gone := f.settled(2, txn.Status{})
	reverted := f.settled(3, mined(types.ReceiptStatusFailed))
	inPool := f.settled(4, txn.Status{Pending: true})
	relayed := f.settled(5, txn.Status{})
	f.chain.used[hash(5)] = true

	if n := f.recheck(); n != 2 {
		t.Fatalf("vanished %d, want 2", n)
	}
	want := map[int64][2]string{
		onChain.ID:  {string(store.StatusSettled), ""},
		gone.ID:     {string(store.StatusVanished), ReasonTransactionVanished},
		reverted.ID: {string(store.StatusVanished), string(x402.ReasonExactTransactionFailed)},
		inPool.ID:   {string(store.StatusSettled), ""}, // may be mined again
		relayed.ID:  {string(store.StatusSettled), ""}, // the money moved in another transaction
	}
	for _, p := range []store.Payment{onChain, gone, reverted, inPool, relayed} {
		status, reason := f.status(p)
		if w := want[p.ID]; string(status) != w[0] || reason != w[1] {
			t.Errorf("payment %d: %s %q, want %s %q", p.ID, status, reason, w[0], w[1])
		}
	}
	for _, p := range []store.Payment{gone, reverted} {
		if !f.logs.hasError(p) {
			t.Errorf("no error logged for payment %d", p.ID)
		}
	}

	// Next round: nothing new to report, and a transaction that comes back settles again.
	f.chain.txs[hash(2)] = mined(types.ReceiptStatusSuccessful)
	if n := f.recheck(); n != 0 {
		t.Fatalf("second round vanished %d, want 0", n)
	}
	if status, reason := f.status(gone); status != store.StatusSettled || reason != "" {
		t.Fatalf("payment back on chain: %s %q, want settled", status, reason)
	}
	if errs := f.logs.count(slog.LevelError); errs != 2 {
		t.Fatalf("%d errors logged over two rounds, want 2 (one per vanished payment)", errs)
	}
}

func TestRecheckLeavesYoungAndOldSettlementsAlone(t *testing.T) {
	f := newFixture(t)
	old := f.settled(1, txn.Status{})
	f.clock = f.clock.Add(DefaultRecheckWindow + time.Hour)
	young := f.settled(2, txn.Status{})
	n, err := f.rec.RecheckOnce(t.Context()) // young is seconds old
	if err != nil || n != 0 {
		t.Fatalf("RecheckOnce: %d, %v; want nothing judged", n, err)
	}
	if n := f.recheck(); n != 1 {
		t.Fatalf("once old enough: vanished %d, want 1", n)
	}
	if status, _ := f.status(young); status != store.StatusVanished {
		t.Fatalf("young payment, later: %s, want vanished", status)
	}
	if status, _ := f.status(old); status != store.StatusSettled {
		t.Fatalf("payment settled before the window: %s, want settled (not checked)", status)
	}
}

func TestRecheckPagesAndGoesOnAfterAFailedLookup(t *testing.T) {
	f := newFixture(t)
	f.rec.RecheckBatch = 2
	var ps []store.Payment
	for n := range 3 {
		ps = append(ps, f.settled(n, txn.Status{}))
	}
	f.chain.fails[hash(2)] = true // the newest: its lookup fails, the next one is still checked

	if n := f.recheck(); n != 1 {
		t.Fatalf("first page (two newest): vanished %d, want 1", n)
	}
	if n := f.recheck(); n != 1 {
		t.Fatalf("second page (the oldest): vanished %d, want 1", n)
	}
	delete(f.chain.fails, hash(2))
	if n := f.recheck(); n != 1 {
		t.Fatalf("starting over: vanished %d, want 1 (the one whose lookup failed)", n)
	}
	for _, p := range ps {
		if status, _ := f.status(p); status != store.StatusVanished {
			t.Errorf("payment %d: %s, want vanished", p.ID, status)
		}
	}
	if f.logs.count(slog.LevelWarn) == 0 {
		t.Errorf("the failed lookup was not logged")
	}
}

// logRecorder keeps log records for the tests to inspect.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *logRecorder) count(level slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level {
			n++
		}
	}
	return n
}

// hasError reports an error record naming p's id, transaction, payer and amount.
func (h *logRecorder) hasError(p store.Payment) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[string]string{"payment": fmt.Sprint(p.ID), "tx": p.TxHash, "payer": p.Payer, "amount": p.Amount.String()}
	for _, r := range h.records {
		found := 0
		r.Attrs(func(a slog.Attr) bool {
			if v, ok := want[a.Key]; ok && a.Value.String() == v {
				found++
			}
			return true
		})
		if r.Level == slog.LevelError && found == len(want) {
			return true
		}
	}
	return false
}
