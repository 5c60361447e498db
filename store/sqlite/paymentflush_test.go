package sqlite_test

import (
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

func flushPayment(n int) *store.Payment {
	return &store.Payment{Scheme: "exact", Network: "eip155:1337", Asset: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
		Payer: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", PayTo: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
		Amount: big.NewInt(1000), Nonce: fmt.Sprintf("0x%064x", 0xF1005+n), ValidBefore: time.Now().Add(time.Hour),
		Method: "GET", Route: "/v1/quote", Resource: "http://gateway/v1/quote"}
}

// TestPaymentWritesShareFlushes: reservations and state moves of exact payments are answered
// only after a flush of the log (a failed flush fails them as unavailable, and the next write
// goes through), and many at once share few flushes.
func TestPaymentWritesShareFlushes(t *testing.T) {
	ctx := t.Context()
	var failNext atomic.Bool
	var flushes atomic.Int64
	s, err := sqlite.OpenWithFlusher(ctx, filepath.Join(t.TempDir(), "payper.db"), sqlite.Options{},
		func(flush func() error) func() error {
			return func() error {
				flushes.Add(1)
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

	failNext.Store(true)
	if _, err := s.ReservePayment(ctx, flushPayment(0)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("reservation whose flush failed: %v, want unavailable", err)
	}
	before := flushes.Load()
	id, err := s.ReservePayment(ctx, flushPayment(1))
	if err != nil || flushes.Load() == before {
		t.Fatalf("reservation: %v, flushes %d → %d: answered before any flush", err, before, flushes.Load())
	}
	failNext.Store(true)
	if err := s.MarkSubmitted(ctx, id, fmt.Sprintf("0x%064x", 1)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("write-ahead record whose flush failed: %v, want unavailable", err)
	}

	const n = 64
	before = flushes.Load()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.ReservePayment(ctx, flushPayment(100+i)); err != nil {
				t.Errorf("reservation %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if used := flushes.Load() - before; used >= n {
		t.Fatalf("%d concurrent reservations took %d flushes: no sharing", n, used)
	} else {
		t.Logf("%d concurrent reservations took %d flushes", n, used)
	}
}
