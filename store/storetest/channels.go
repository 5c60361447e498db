package storetest

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

func channelID(n int) string { return fmt.Sprintf("0x%064X", 0xC0FFEE00+n) }

func newChannel(n int) *store.Channel {
	return &store.Channel{
		ID: channelID(n), Network: testNetwork,
		Payer: testAccount2, PayerAuthorizer: testAccount2, Receiver: testAccount1, ReceiverAuthorizer: testAccount3,
		Token: testAsset, WithdrawDelay: 900, Salt: fmt.Sprintf("0x%064X", n),
		Balance: big.NewInt(10_000), SyncedBlock: 7,
	}
}

func mustCreateChannel(t *testing.T, s store.Store, c *store.Channel) {
	t.Helper()
	if err := s.CreateChannel(t.Context(), c); err != nil {
		t.Fatalf("CreateChannel: %v", err)
	}
}

func mustGetChannel(t *testing.T, s store.Store, id string) *store.Channel {
	t.Helper()
	c, err := s.GetChannel(t.Context(), id)
	if err != nil {
		t.Fatalf("GetChannel: %v", err)
	}
	return c
}

func testChannelRoundTrip(t *testing.T, h *harness) {
	s := h.store(t)
	c := newChannel(1)
	huge, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10)
	c.Balance, c.RefundNonce, c.WithdrawRequestedAt = huge, big.NewInt(3), 1_900_000_000
	mustCreateChannel(t, s, c)
	got := mustGetChannel(t, s, "0x"+strings.ToLower(c.ID[2:])) // lookups ignore hex case
	if got.ID != strings.ToLower(c.ID) || got.Payer != strings.ToLower(testAccount2) || got.Token != strings.ToLower(testAsset) {
		t.Fatalf("hex fields not normalised: %+v", got)
	}
	if got.Balance.Cmp(huge) != 0 || got.Charged.Sign() != 0 || got.Claimed.Sign() != 0 || got.RefundNonce.Int64() != 3 {
		t.Fatalf("amounts: %+v", got)
	}
	if got.ChainVersion != 1 || got.SyncedBlock != 7 || got.WithdrawDelay != 900 || got.WithdrawRequestedAt != 1_900_000_000 {
		t.Fatalf("counters: %+v", got)
	}
	if !got.CreatedAt.Equal(stored(h.clock.Now())) {
		t.Fatalf("created at %v", got.CreatedAt)
	}
	if err := s.CreateChannel(t.Context(), newChannel(1)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.GetChannel(t.Context(), channelID(99)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown channel: %v", err)
	}
	bad := newChannel(2)
	bad.Receiver = ""
	if err := s.CreateChannel(t.Context(), bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("channel without receiver: %v", err)
	}
}

func charge(c *store.Channel, by int64) store.ChannelCharge {
	next := new(big.Int).Add(c.Charged, big.NewInt(by))
	return store.ChannelCharge{ID: c.ID, ExpectedCharged: c.Charged, ChainVersion: c.ChainVersion,
		Charged: next, SignedMax: next, Signature: "0xAB" + next.String()}
}

func testChannelCharge(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	c := newChannel(1)
	mustCreateChannel(t, s, c)
	c = mustGetChannel(t, s, c.ID)
	if err := s.ChargeChannel(ctx, charge(c, 1000)); err != nil {
		t.Fatal(err)
	}
	// The same voucher again (the read state is now stale): refused.
	if err := s.ChargeChannel(ctx, charge(c, 1000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replayed charge: %v", err)
	}
	c = mustGetChannel(t, s, c.ID)
	if c.Charged.Int64() != 1000 || c.SignedMax.Int64() != 1000 || c.Signature != "0xab1000" {
		t.Fatalf("after charge: %+v", c)
	}
	// The watcher updated the mirror since the caller read it: the funds check is stale.
	if err := s.SyncChannel(ctx, c.ID, store.ChannelChainState{Balance: big.NewInt(10_000), TotalClaimed: big.NewInt(0),
		PendingWithdrawal: big.NewInt(9000), WithdrawRequestedAt: 123, Block: 8}); err != nil {
		t.Fatal(err)
	}
	if err := s.ChargeChannel(ctx, charge(c, 1000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("charge on a stale chain version: %v", err)
	}
	c = mustGetChannel(t, s, c.ID)
	if c.ChainVersion != 2 || c.PendingWithdrawal.Int64() != 9000 || c.WithdrawRequestedAt != 123 || c.SyncedBlock != 8 {
		t.Fatalf("after sync: %+v", c)
	}
	// State from an older block never overwrites newer state.
	if err := s.SyncChannel(ctx, c.ID, store.ChannelChainState{Balance: big.NewInt(1), TotalClaimed: big.NewInt(0), Block: 5}); err != nil {
		t.Fatal(err)
	}
	if again := mustGetChannel(t, s, c.ID); again.Balance.Int64() != 10_000 || again.ChainVersion != 2 {
		t.Fatalf("stale sync applied: %+v", again)
	}
	// A charged total never goes down, nor is it charged again at the same amount.
	for _, to := range []int64{1000, 500} {
		c = mustGetChannel(t, s, c.ID)
		err := s.ChargeChannel(ctx, store.ChannelCharge{ID: c.ID, ExpectedCharged: c.Charged, ChainVersion: c.ChainVersion,
			Charged: big.NewInt(to), SignedMax: big.NewInt(to)})
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("charge from %s to %d: %v", c.Charged, to, err)
		}
	}
	if err := s.ChargeChannel(ctx, store.ChannelCharge{ID: channelID(42), ExpectedCharged: big.NewInt(0), Charged: big.NewInt(1), SignedMax: big.NewInt(1)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("charge of an unknown channel: %v", err)
	}
}

// testConcurrentChannelCharges: 40 requests on one channel race, on two handles (two replicas).
// Each reads the channel and charges the next 100 as long as the deposit covers it. However the
// race goes, each winner charged exactly once (the total is 100 × winners) and the charged total
// never passes the deposit; how many win depends on the interleaving (at most ten).
func testConcurrentChannelCharges(t *testing.T, h *harness) {
	replicas := []store.Store{h.store(t), h.store(t)}
	c := newChannel(1)
	c.Balance = big.NewInt(1000)
	mustCreateChannel(t, replicas[0], c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(s store.Store) {
			defer wg.Done()
			cur, err := s.GetChannel(t.Context(), c.ID)
			if err != nil {
				t.Error(err)
				return
			}
			ch := charge(cur, 100)
			if ch.Charged.Cmp(cur.Balance) > 0 {
				mu.Lock()
				lost++
				mu.Unlock()
				return
			}
			err = s.ChargeChannel(t.Context(), ch)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrConflict):
				lost++
			default:
				t.Error(err)
			}
		}(replicas[i%2])
	}
	wg.Wait()
	final := mustGetChannel(t, replicas[1], c.ID)
	if final.Charged.Int64() != int64(won)*100 || final.Charged.Cmp(final.Balance) > 0 || won+lost != 40 || won == 0 {
		t.Fatalf("won %d lost %d, charged %s of %s", won, lost, final.Charged, final.Balance)
	}
}

func testChannelClaimsAndList(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	for i := 1; i <= 3; i++ {
		mustCreateChannel(t, s, newChannel(i))
		h.clock.Advance(time.Second)
	}
	other := newChannel(4)
	other.Receiver = testAccount0
	mustCreateChannel(t, s, other)
	h.clock.Advance(time.Second)
	c2 := mustGetChannel(t, s, channelID(2))
	if err := s.ChargeChannel(ctx, charge(c2, 500)); err != nil {
		t.Fatal(err)
	}
	unclaimed, err := s.ListChannels(ctx, store.ChannelFilter{Network: testNetwork, Receiver: testAccount1, Unclaimed: true})
	if err != nil || len(unclaimed) != 1 || unclaimed[0].ID != strings.ToLower(channelID(2)) {
		t.Fatalf("unclaimed: %v %v", unclaimed, err)
	}
	if err := s.MarkChannelClaimed(ctx, c2.ID, big.NewInt(0), big.NewInt(500)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkChannelClaimed(ctx, c2.ID, big.NewInt(0), big.NewInt(500)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second claim mark: %v", err)
	}
	if unclaimed, _ = s.ListChannels(ctx, store.ChannelFilter{Unclaimed: true}); len(unclaimed) != 0 {
		t.Fatalf("claimed channel still listed: %v", unclaimed)
	}
	all, _ := s.ListChannels(ctx, store.ChannelFilter{Receiver: strings.ToLower(testAccount1)})
	if len(all) != 3 || all[0].ID != strings.ToLower(channelID(2)) {
		t.Fatalf("by receiver, most recently updated first: %d %v", len(all), all)
	}
	if byPayer, _ := s.ListChannels(ctx, store.ChannelFilter{Payer: testAccount2, Limit: 2}); len(byPayer) != 2 {
		t.Fatalf("limit: %d", len(byPayer))
	}
	// Paging by id visits every channel once, in id order, whatever was updated meanwhile.
	var seen []string
	after := ""
	for {
		page, err := s.ListChannels(ctx, store.ChannelFilter{ByID: true, AfterID: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			seen = append(seen, c.ID)
		}
		if len(page) < 2 {
			break
		}
		after = strings.ToUpper(page[len(page)-1].ID[2:]) // the cursor's case does not matter
		after = "0x" + after
	}
	want := []string{strings.ToLower(channelID(1)), strings.ToLower(channelID(2)), strings.ToLower(channelID(3)), strings.ToLower(channelID(4))}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("paged by id: %v, want %v", seen, want)
	}
	if _, err := s.ListChannels(ctx, store.ChannelFilter{AfterID: want[0]}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("AfterID without ByID: %v", err)
	}
}

func testChannelsSurviveReopen(t *testing.T, h *harness) {
	first, err := h.open(t.Context(), Config{Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := newChannel(1)
	mustCreateChannel(t, first, c)
	if err := first.ChargeChannel(t.Context(), charge(mustGetChannel(t, first, c.ID), 700)); err != nil {
		t.Fatal(err)
	}
	first.Close()
	if got := mustGetChannel(t, h.store(t), c.ID); got.Charged.Int64() != 700 || got.Signature != "0xab700" {
		t.Fatalf("after reopen: %+v", got)
	}
}

// testChannelRefundHold: a refund hold goes on only over the state the caller read, makes a
// charge judged before it fail, survives chain syncs until the refund nonce moves, and can be
// released once.
func testChannelRefundHold(t *testing.T, h *harness) {
	s := h.store(t)
	ctx := t.Context()
	c := newChannel(1)
	mustCreateChannel(t, s, c)
	c = mustGetChannel(t, s, c.ID)
	if c.RefundHold.Sign() != 0 {
		t.Fatalf("new channel holds %s", c.RefundHold)
	}
	if err := s.ChargeChannel(ctx, charge(c, 1000)); err != nil {
		t.Fatal(err)
	}
	read := mustGetChannel(t, s, c.ID) // charged 1000, balance 10 000
	hold := func(from *store.Channel, amount int64) store.ChannelRefundHold {
		return store.ChannelRefundHold{ID: from.ID, ExpectedCharged: from.Charged, ChainVersion: from.ChainVersion, Amount: big.NewInt(amount),
			Until: h.clock.Now().Add(10 * time.Minute)}
	}
	// A voucher charged after the refund was judged: the hold must not go through.
	racer := mustGetChannel(t, s, c.ID)
	if err := s.ChargeChannel(ctx, charge(racer, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := s.HoldChannelRefund(ctx, hold(read, 9000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("hold over a moved charge: %v", err)
	}
	read = mustGetChannel(t, s, c.ID) // charged 2000
	if err := s.HoldChannelRefund(ctx, hold(read, 8000)); err != nil {
		t.Fatal(err)
	}
	// A voucher judged before the hold: its compare-and-set fails on the chain version.
	if err := s.ChargeChannel(ctx, charge(read, 1000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("charge on the state before the hold: %v", err)
	}
	held := mustGetChannel(t, s, c.ID)
	if held.RefundHold.Int64() != 8000 || held.Balance.Int64() != 10_000 || held.Charged.Int64() != 2000 || held.ChainVersion != read.ChainVersion+1 {
		t.Fatalf("after the hold: %+v", held)
	}
	// One hold at a time, and only on the state read.
	if err := s.HoldChannelRefund(ctx, hold(held, 1)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second hold: %v", err)
	}
	if err := s.HoldChannelRefund(ctx, hold(read, 8000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("hold on a stale read: %v", err)
	}
	for name, bad := range map[string]store.ChannelRefundHold{
		"unknown channel": {ID: channelID(42), ExpectedCharged: big.NewInt(0), Amount: big.NewInt(1)},
		"negative amount": {ID: c.ID, ExpectedCharged: big.NewInt(0), Amount: big.NewInt(-1)},
		"zero amount":     {ID: c.ID, ExpectedCharged: held.Charged, ChainVersion: held.ChainVersion, Amount: big.NewInt(0)},
	} {
		want := store.ErrInvalid
		if name == "unknown channel" {
			want = store.ErrNotFound
		}
		if err := s.HoldChannelRefund(ctx, bad); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
	}
	// A sync that does not show the refund (same refund nonce) keeps the hold.
	if err := s.SyncChannel(ctx, c.ID, store.ChannelChainState{Balance: big.NewInt(10_500), TotalClaimed: big.NewInt(0), RefundNonce: big.NewInt(0), Block: 8}); err != nil {
		t.Fatal(err)
	}
	if got := mustGetChannel(t, s, c.ID); got.RefundHold.Int64() != 8000 || got.Balance.Int64() != 10_500 {
		t.Fatalf("after a sync before the refund landed: %+v", got)
	}
	// The refund lands (the nonce moves): the chain's balance no longer holds it.
	if err := s.SyncChannel(ctx, c.ID, store.ChannelChainState{Balance: big.NewInt(2500), TotalClaimed: big.NewInt(2000), RefundNonce: big.NewInt(1), Block: 9}); err != nil {
		t.Fatal(err)
	}
	if got := mustGetChannel(t, s, c.ID); got.RefundHold.Sign() != 0 || got.Balance.Int64() != 2500 || got.TotalClaimed.Int64() != 2000 {
		t.Fatalf("after the refund landed: %+v", got)
	}
	if err := s.ReleaseChannelRefund(ctx, c.ID, big.NewInt(8000)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("release of a hold the sync cleared: %v", err)
	}
	// A refund that did not happen: the hold is released once, and the funds are spendable.
	cur := mustGetChannel(t, s, c.ID)
	if err := s.HoldChannelRefund(ctx, hold(cur, 500)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseChannelRefund(ctx, c.ID, big.NewInt(400)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("release of another amount: %v", err)
	}
	if err := s.ReleaseChannelRefund(ctx, c.ID, big.NewInt(500)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseChannelRefund(ctx, c.ID, big.NewInt(500)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second release: %v", err)
	}
	if got := mustGetChannel(t, s, c.ID); got.RefundHold.Sign() != 0 {
		t.Fatalf("after the release: %+v", got)
	}
	if err := s.ReleaseChannelRefund(ctx, channelID(42), big.NewInt(1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("release on an unknown channel: %v", err)
	}
	// A hold whose refund never went out lapses: it stops holding funds and blocking refunds.
	cur = mustGetChannel(t, s, c.ID)
	if err := s.HoldChannelRefund(ctx, hold(cur, 700)); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(9 * time.Minute)
	if got := mustGetChannel(t, s, c.ID); got.RefundHold.Int64() != 700 {
		t.Fatalf("hold before it lapses: %+v", got)
	}
	h.clock.Advance(time.Minute)
	lapsed := mustGetChannel(t, s, c.ID)
	if lapsed.RefundHold.Sign() != 0 {
		t.Fatalf("lapsed hold still reported: %s", lapsed.RefundHold)
	}
	if err := s.HoldChannelRefund(ctx, hold(lapsed, 600)); err != nil {
		t.Fatalf("hold over a lapsed one: %v", err)
	}
	if got := mustGetChannel(t, s, c.ID); got.RefundHold.Int64() != 600 {
		t.Fatalf("after the new hold: %+v", got)
	}
}
