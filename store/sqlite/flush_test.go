package sqlite_test

import (
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

func testChannel(n int) *store.Channel {
	return &store.Channel{
		ID: fmt.Sprintf("0x%064x", 0xC0FFEE00+n), Network: "eip155:1337",
		Payer:              "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
		PayerAuthorizer:    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
		Receiver:           "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
		ReceiverAuthorizer: "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
		Token:              "0x5fbdb2315678afecb367f032d93f642f64180aa3", WithdrawDelay: 900,
		Salt: fmt.Sprintf("0x%064x", n), Balance: big.NewInt(10_000), SyncedBlock: 1,
	}
}

func chargeBy(c *store.Channel, by int64) store.ChannelCharge {
	next := new(big.Int).Add(c.Charged, big.NewInt(by))
	return store.ChannelCharge{ID: c.ID, ExpectedCharged: c.Charged, ChainVersion: c.ChainVersion,
		Charged: next, SignedMax: next, Signature: "0xab" + next.String()}
}

// TestChargeWaitsForFlush: a grouped charge is committed without waiting for the disk but is
// answered only after a flush that started once it was committed; a failed flush fails the
// charge as unavailable; and the writer goes back to synchronous=FULL for other writes.
func TestChargeWaitsForFlush(t *testing.T) {
	ctx := t.Context()
	var gate atomic.Pointer[chan struct{}] // when set, a flush waits for it to close
	var failNext atomic.Bool
	var flushes atomic.Int64
	entered := make(chan struct{}, 16)
	s, err := sqlite.OpenWithFlusher(ctx, filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{},
		func(flush func() error) func() error {
			return func() error {
				flushes.Add(1)
				if g := gate.Load(); g != nil {
					entered <- struct{}{}
					<-*g
				}
				if failNext.Swap(false) {
					return errors.New("disk on fire")
				}
				return flush()
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := testChannel(1)
	if err := s.CreateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}

	hold := make(chan struct{})
	gate.Store(&hold)
	answered := make(chan error, 1)
	go func() { answered <- s.ChargeChannel(ctx, chargeBy(c, 1000)) }()
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("no flush started")
	}
	// The flush is running: the charge is committed (readers see it) but not answered.
	got, err := s.GetChannel(ctx, c.ID)
	if err != nil || got.Charged.Int64() != 1000 {
		t.Fatalf("before the flush ended: charged %v, err %v", got, err)
	}
	select {
	case err := <-answered:
		t.Fatalf("charge answered before its flush ended: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	gate.Store(nil)
	close(hold)
	if err := <-answered; err != nil {
		t.Fatalf("charge: %v", err)
	}

	failNext.Store(true)
	c = got
	if err := s.ChargeChannel(ctx, chargeBy(c, 1000)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("charge with a failed flush: %v, want ErrUnavailable", err)
	}
	// Committed but not known durable: the row moved, so the same charge is now a conflict and
	// the next one from the moved state goes through.
	if err := s.ChargeChannel(ctx, chargeBy(c, 1000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("repeat after the failed flush: %v", err)
	}
	c, _ = s.GetChannel(ctx, c.ID)
	if err := s.ChargeChannel(ctx, chargeBy(c, 1000)); err != nil || c.Charged.Int64() != 2000 {
		t.Fatalf("charge after a failed flush: %v (charged was %v)", err, c.Charged)
	}
	if n := flushes.Load(); n != 4 {
		t.Errorf("%d flushes for 4 groups", n)
	}
	if level, err := s.WriterSynchronous(ctx); err != nil || level != 2 {
		t.Fatalf("writer synchronous = %d (%v), want 2 (FULL)", level, err)
	}
}

// TestConcurrentChargesThroughFlushes: many charges at once are all answered and all applied,
// with at least one flush and never more flushes than charges (how many share one depends on
// scheduling, so the count is logged, not asserted).
func TestConcurrentChargesThroughFlushes(t *testing.T) {
	ctx := t.Context()
	var flushes atomic.Int64
	s, err := sqlite.OpenWithFlusher(ctx, filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{},
		func(flush func() error) func() error {
			return func() error { flushes.Add(1); return flush() }
		})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const channels, rounds = 16, 20
	errs := make(chan error, channels)
	for n := range channels {
		c := testChannel(n)
		if err := s.CreateChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
		go func() {
			for range rounds {
				if err := s.ChargeChannel(ctx, chargeBy(c, 10)); err != nil {
					errs <- err
					return
				}
				c.Charged.Add(c.Charged, big.NewInt(10))
			}
			errs <- nil
		}()
	}
	for range channels {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for n := range channels {
		got, err := s.GetChannel(ctx, testChannel(n).ID)
		if err != nil || got.Charged.Int64() != 10*rounds {
			t.Fatalf("channel %d: %v %v", n, got, err)
		}
	}
	n := flushes.Load()
	t.Logf("%d charges, %d flushes", channels*rounds, n)
	if n == 0 || n > channels*rounds {
		t.Fatalf("%d flushes for %d charges", n, channels*rounds)
	}
}

// TestFinishDoesNotWaitForFlush: an in-flight charge waits for the flush, as every charge does,
// but making it final does not: a committed finish survives a crash of the process, and a
// machine crash could only give the provider's charge back, never charge the payer twice.
func TestFinishDoesNotWaitForFlush(t *testing.T) {
	ctx := t.Context()
	var gate atomic.Pointer[chan struct{}]
	entered := make(chan struct{}, 16)
	s, err := sqlite.OpenWithFlusher(ctx, filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{},
		func(flush func() error) func() error {
			return func() error {
				if g := gate.Load(); g != nil {
					entered <- struct{}{}
					<-*g
				}
				return flush()
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := testChannel(1)
	if err := s.CreateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}
	ch := chargeBy(c, 1000)
	ch.InFlight = &store.InFlightCharge{ID: "req-1", Amount: big.NewInt(1000), Expires: time.Now().Add(time.Minute)}
	if err := s.ChargeChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	gate.Store(&hold)
	defer close(hold)
	// Keep the flusher busy with another charge, then finish: answered while the flush hangs.
	c2 := testChannel(2)
	if err := s.CreateChannel(ctx, c2); err != nil {
		t.Fatal(err)
	}
	go s.ChargeChannel(ctx, chargeBy(c2, 1))
	<-entered
	done := make(chan error, 1)
	go func() { done <- s.FinishChannelCharge(ctx, c.ID, *ch.InFlight) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a finish waited for the disk")
	}
	if got, err := s.GetChannel(ctx, c.ID); err != nil || got.InFlight.Sign() != 0 || got.Charged.Int64() != 1000 {
		t.Fatalf("after the finish: %+v %v", got, err)
	}
}
