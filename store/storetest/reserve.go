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

func testReserveRoundTrip(t *testing.T, h *harness) {
	s := h.store(t)
	one := big.NewInt(1)
	amounts := []*big.Int{
		big.NewInt(0),
		big.NewInt(1),
		new(big.Int).Add(new(big.Int).Lsh(one, 64), one),          // 2^64+1
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), one),         // 2^256-1
		new(big.Int).SetBytes([]byte(strings.Repeat("\x99", 20))), // 160 bits
	}
	seen := map[int64]bool{}
	for i, amount := range amounts {
		h.clock.Advance(time.Second)
		p := newPayment(i)
		p.Amount = amount
		input := *p
		id, err := s.ReservePayment(t.Context(), p)
		must(t, "ReservePayment", err)
		if id <= 0 || seen[id] {
			t.Fatalf("ReservePayment returned id %d (seen before: %v)", id, seen[id])
		}
		seen[id] = true
		want := expectReserved(input, id, h.clock.Now())
		checkPayment(t, p, want) // the argument is updated in place
		checkPayment(t, mustGet(t, s, id), want)
	}
}

func testReserveRejectsInvalid(t *testing.T, h *harness) {
	s := h.store(t)
	cases := map[string]func(*store.Payment){
		"nil amount":      func(p *store.Payment) { p.Amount = nil },
		"negative amount": func(p *store.Payment) { p.Amount = big.NewInt(-1) },
		"amount 2^256":    func(p *store.Payment) { p.Amount = new(big.Int).Lsh(big.NewInt(1), 256) },
		"no scheme":       func(p *store.Payment) { p.Scheme = "" },
		"no network":      func(p *store.Payment) { p.Network = "" },
		"no asset":        func(p *store.Payment) { p.Asset = "" },
		"no payer":        func(p *store.Payment) { p.Payer = "" },
		"no payTo":        func(p *store.Payment) { p.PayTo = "" },
		"no nonce":        func(p *store.Payment) { p.Nonce = "" },
	}
	for name, mutate := range cases {
		p := newPayment(1)
		mutate(p)
		_, err := s.ReservePayment(t.Context(), p)
		wantErr(t, name, err, store.ErrInvalid)
	}
	_, err := s.ReservePayment(t.Context(), nil)
	wantErr(t, "nil payment", err, store.ErrInvalid)

	all, err := s.ListPayments(t.Context(), store.PaymentFilter{})
	must(t, "ListPayments", err)
	checkIDs(t, "after invalid reservations", all)
	mustReserve(t, s, newPayment(1)) // the key was never taken
}

// testDuplicateReservation covers sequential replay, and a second
// authorization with the same payer and nonce but other content: the key is
// (network, asset, payer, nonce), nothing else.
func testDuplicateReservation(t *testing.T, h *harness) {
	s := h.store(t)
	first := mustReserve(t, s, newPayment(1))

	dups := map[string]func(*store.Payment){
		"same payment": func(*store.Payment) {},
		"other amount": func(p *store.Payment) { p.Amount = big.NewInt(1) },
		"other payTo":  func(p *store.Payment) { p.PayTo = testAccount3 },
		"other route":  func(p *store.Payment) { p.Route, p.Resource = "/v1/other", "http://127.0.0.1:8080/v1/other" },
		"lower-case key": func(p *store.Payment) {
			p.Payer, p.Asset, p.Nonce = strings.ToLower(p.Payer), strings.ToLower(p.Asset), strings.ToLower(p.Nonce)
		},
		"upper-case key": func(p *store.Payment) {
			p.Payer, p.Asset = "0x"+strings.ToUpper(p.Payer[2:]), "0X"+strings.ToUpper(p.Asset[2:])
		},
		"other validBefore": func(p *store.Payment) { p.ValidBefore = p.ValidBefore.Add(time.Hour) },
	}
	for name, mutate := range dups {
		p := newPayment(1)
		mutate(p)
		id, err := s.ReservePayment(t.Context(), p)
		wantErr(t, name, err, store.ErrDuplicate)
		if id != 0 || p.ID != 0 {
			t.Fatalf("%s: duplicate returned id %d, set p.ID %d", name, id, p.ID)
		}
	}

	distinct := map[string]func(*store.Payment){
		"other nonce":   func(p *store.Payment) { p.Nonce = nonce(2) },
		"other payer":   func(p *store.Payment) { p.Payer = testAccount2 },
		"other asset":   func(p *store.Payment) { p.Asset = testAccount3 },
		"other network": func(p *store.Payment) { p.Network = "eip155:8453" },
	}
	for name, mutate := range distinct {
		p := newPayment(1)
		mutate(p)
		if id := mustReserve(t, s, p); id == first {
			t.Fatalf("%s: got the first payment's id", name)
		}
	}
	checkPayment(t, mustGet(t, s, first), expectReserved(*newPayment(1), first, h.clock.Now()))
}

// raceReserve releases all reservers at once and returns how many succeeded
// and the errors of the rest.
func raceReserve(t *testing.T, stores []store.Store, perStore, n int) (wins []int64, errs []error) {
	t.Helper()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for _, s := range stores {
		for range perStore {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				id, err := s.ReservePayment(context.Background(), newPayment(n))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins = append(wins, id)
				} else {
					errs = append(errs, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	return wins, errs
}

func checkOneWinner(t *testing.T, round int, wins []int64, errs []error, total int) {
	t.Helper()
	if len(wins) != 1 {
		t.Fatalf("round %d: %d reservations succeeded, want exactly 1", round, len(wins))
	}
	if len(errs) != total-1 {
		t.Fatalf("round %d: %d failures, want %d", round, len(errs), total-1)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("round %d: loser got %v, want ErrDuplicate", round, err)
		}
	}
}

// testConcurrentReservations: 50 goroutines present the same authorization
// to one store at the same moment.
func testConcurrentReservations(t *testing.T, h *harness) {
	s := h.store(t)
	const goroutines, rounds = 50, 3
	for round := range rounds {
		wins, errs := raceReserve(t, []store.Store{s}, goroutines, round)
		checkOneWinner(t, round, wins, errs, goroutines)
		got, err := s.FindPayment(t.Context(), testNetwork, testAsset, testAccount0, nonce(round))
		must(t, "FindPayment", err)
		if got.ID != wins[0] {
			t.Fatalf("round %d: live payment %d, winner %d", round, got.ID, wins[0])
		}
	}
}

// testTwoHandlesRace: two replicas on one database race for the same key,
// many rounds.
func testTwoHandlesRace(t *testing.T, h *harness) {
	a, b := h.store(t), h.store(t)
	const perStore, rounds = 10, 20
	for round := range rounds {
		wins, errs := raceReserve(t, []store.Store{a, b}, perStore, round)
		checkOneWinner(t, round, wins, errs, 2*perStore)
		for name, s := range map[string]store.Store{"a": a, "b": b} {
			got, err := s.FindPayment(t.Context(), testNetwork, testAsset, testAccount0, nonce(round))
			must(t, "FindPayment on "+name, err)
			if got.ID != wins[0] {
				t.Fatalf("round %d: replica %s sees payment %d, winner %d", round, name, got.ID, wins[0])
			}
		}
	}
	unfinished, err := a.UnfinishedPayments(t.Context())
	must(t, "UnfinishedPayments", err)
	if len(unfinished) != rounds {
		t.Fatalf("%d reserved payments, want %d", len(unfinished), rounds)
	}
}

// testConcurrentOpen: replicas starting at the same time on an empty
// database must all come up, with the schema applied once.
func testConcurrentOpen(t *testing.T, h *harness) {
	const replicas = 4
	stores := make([]store.Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = h.open(context.Background(), Config{Now: h.clock.Now})
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if errs[i] == nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	for _, err := range errs {
		must(t, "open replica", err)
	}
	id := mustReserve(t, stores[0], newPayment(1))
	for i, s := range stores {
		_, err := s.ReservePayment(t.Context(), newPayment(1))
		wantErr(t, "replica reserving the same key", err, store.ErrDuplicate)
		if got := mustGet(t, s, id); got.Status != store.StatusReserved {
			t.Fatalf("replica %d sees status %s", i, got.Status)
		}
	}
}

// testReleaseFreesKey: only a release gives the key back; settled and
// failed payments keep it forever.
func testReleaseFreesKey(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	first := mustReserve(t, s, newPayment(1))
	h.clock.Advance(time.Second)
	must(t, "ReleasePayment", s.ReleasePayment(ctx, first, "upstream_error"))

	second := mustReserve(t, s, newPayment(1))
	if second == first {
		t.Fatalf("new reservation reused id %d", first)
	}
	_, err := s.ReservePayment(ctx, newPayment(1))
	wantErr(t, "reserve while the second is live", err, store.ErrDuplicate)

	old := mustGet(t, s, first)
	if old.Status != store.StatusReleased || old.ErrorReason != "upstream_error" {
		t.Fatalf("released payment: status %s reason %q", old.Status, old.ErrorReason)
	}
	// Several released rows may share a key.
	must(t, "ReleasePayment second", s.ReleasePayment(ctx, second, "rpc_unavailable"))
	third := mustReserve(t, s, newPayment(1))

	must(t, "MarkFailed", s.MarkFailed(ctx, third, "invalid_exact_evm_transaction_failed"))
	_, err = s.ReservePayment(ctx, newPayment(1))
	wantErr(t, "reserve after failure", err, store.ErrDuplicate)

	settled := mustReserve(t, s, newPayment(2))
	must(t, "MarkSettled", s.MarkSettled(ctx, settled, txHash(1)))
	_, err = s.ReservePayment(ctx, newPayment(2))
	wantErr(t, "reserve after settlement", err, store.ErrDuplicate)
}
