package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/x402"
)

// withdrawStart is when the shop's withdrawals start, in unix seconds.
const withdrawStart = 1_700_000_000

// withdraw starts a timed withdrawal of amount from the channel at the shop, as the escrow would
// once the payer initiates one.
func (s *channelShop) withdraw(id common.Hash, amount int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[id], s.withdrawAt[id] = big.NewInt(amount), withdrawStart
}

// vouchers counts the paid requests that were not exact payments.
func (s *channelShop) vouchers() int64 { return s.paid.Load() - s.exactPayments.Load() }

// openShopChannel opens a channel of 10000 at the shop with one paid request.
func openShopChannel(t *testing.T, s *channelShop, store ChannelStore) *channelstore.Record {
	t.Helper()
	c, cp, _ := shopClient(t, store, big.NewInt(10_000), false)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("open: %d %v", st, err)
	}
	rec := s.record(t, cp)
	wantAmounts(t, rec, 10_000, 10_000, 1000)
	return rec
}

// TestChannelKnownWithdrawalPaysElsewhere: with a withdrawal on record that leaves less than the
// price, the payer sends no voucher bound to be refused: it pays by exact, or tops the channel up
// when a deposit is allowed.
func TestChannelKnownWithdrawalPaysElsewhere(t *testing.T) {
	s := newChannelShop(t, nil)
	store := channelstore.NewMemory()
	rec := openShopChannel(t, s, store)
	s.withdraw(rec.ChannelID, 8500)
	rec.SetWithdrawal(big.NewInt(8500), withdrawStart)
	if err := store.Save(rec); err != nil {
		t.Fatal(err)
	}
	if rec.Remaining().Int64() != 500 {
		t.Fatalf("remaining %s; want 10000 − 1000 − 8500", rec.Remaining())
	}

	c, cp, _ := shopClient(t, store, nil, true)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("with 500 left: %d %v", st, err)
	}
	if s.exactPayments.Load() != 1 || s.vouchers() != 1 {
		t.Fatalf("%d exact payments, %d channel payments; want the exact offer used and no voucher sent", s.exactPayments.Load(), s.vouchers())
	}
	if _, err := cp.Prefer(s.offer.Requirements(s.price)); !errors.Is(err, ErrDepositNotAllowed) || !strings.Contains(err.Error(), "withdrawal of 8500 is pending") {
		t.Fatalf("Prefer: %v", err)
	}

	// With a deposit allowed the channel is topped up (by the shop's minimum deposit of 10000).
	c, cp, _ = shopClient(t, store, big.NewInt(10_000), true)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("top-up: %d %v", st, err)
	}
	rec = s.record(t, cp)
	if s.vouchers() != 2 || s.exactPayments.Load() != 1 {
		t.Fatalf("%d channel payments; want the top-up", s.vouchers())
	}
	wantAmounts(t, rec, 20_000, 20_000, 2000)
	if orZero(rec.PendingWithdrawal).Int64() != 8500 || rec.WithdrawRequestedAt != withdrawStart || rec.Remaining().Int64() != 9500 {
		t.Fatalf("after the top-up: pending %s at %d, remaining %s", rec.PendingWithdrawal, rec.WithdrawRequestedAt, rec.Remaining())
	}
}

// TestChannelLearnsWithdrawalFromRefusal: a withdrawal started elsewhere makes the server refuse
// the payer's voucher as exceeding the balance. The payer learns from the refusal: the next
// request pays by exact instead of being refused again, and a payer that may deposit tops up in
// the same request.
func TestChannelLearnsWithdrawalFromRefusal(t *testing.T) {
	s := newChannelShop(t, nil)
	store := channelstore.NewMemory()
	rec := openShopChannel(t, s, store)
	s.withdraw(rec.ChannelID, 9000)

	c, cp, tr := shopClient(t, store, nil, true)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 402 || s.vouchers() != 2 {
		t.Fatalf("first request: %d %v after %d channel payments; want the refusal handed back", st, err, s.vouchers())
	}
	rec = s.record(t, cp)
	// Refused at 2000 with a balance of 10000: more than 8000 is held back.
	if orZero(rec.PendingWithdrawal).Int64() != 8001 || rec.Remaining().Int64() != 999 {
		t.Fatalf("learned pending %s, remaining %s; want 8001 and 999", rec.PendingWithdrawal, rec.Remaining())
	}
	for i := 0; i < 2; i++ {
		if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
			t.Fatalf("request %d after the refusal: %d %v", i, st, err)
		}
	}
	if s.vouchers() != 2 || s.exactPayments.Load() != 2 || tr.Budget.Spent().Int64() != 2000 {
		t.Fatalf("%d channel payments, %d exact, budget spent %s; want both later requests paid by exact", s.vouchers(), s.exactPayments.Load(), tr.Budget.Spent())
	}

	// A payer that may deposit is refused once, learns, and tops up in the same request.
	s2 := newChannelShop(t, nil)
	store2 := channelstore.NewMemory()
	rec2 := openShopChannel(t, s2, store2)
	s2.withdraw(rec2.ChannelID, 9000)
	c2, cp2, _ := shopClient(t, store2, big.NewInt(10_000), false)
	if st, err := getStatus(t, c2, s2.server.URL); err != nil || st != 200 || s2.vouchers() != 3 {
		t.Fatalf("with deposits allowed: %d %v after %d channel payments; want the refusal then a top-up", st, err, s2.vouchers())
	}
	rec2 = s2.record(t, cp2)
	if got := s2.get(s2.balance, rec2.ChannelID).Int64(); got != 20_000 {
		t.Fatalf("the shop holds %d; want one top-up of 10000", got)
	}
	if rec2.WithdrawRequestedAt != withdrawStart || orZero(rec2.PendingWithdrawal).Int64() != 8001 {
		t.Fatalf("after the top-up: pending %s at %d", rec2.PendingWithdrawal, rec2.WithdrawRequestedAt)
	}
}

// TestChannelAdoptsWithdrawalFromSettlement: a PAYMENT-RESPONSE that shows a withdrawal the payer
// did not start counts everything unclaimed as withdrawn; one that shows none ends the one on
// record once it could have been paid out, not before.
func TestChannelAdoptsWithdrawalFromSettlement(t *testing.T) {
	s := newChannelShop(t, nil)
	store := channelstore.NewMemory()
	rec := openShopChannel(t, s, store)
	s.withdraw(rec.ChannelID, 5000)
	c, cp, _ := shopClient(t, store, nil, true)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 || s.vouchers() != 2 {
		t.Fatalf("voucher within what the withdrawal leaves: %d %v", st, err)
	}
	rec = s.record(t, cp)
	if orZero(rec.PendingWithdrawal).Int64() != 10_000 || rec.WithdrawRequestedAt != withdrawStart || rec.Remaining().Sign() != 0 {
		t.Fatalf("adopted pending %s at %d, remaining %s; want all 10000 unclaimed", rec.PendingWithdrawal, rec.WithdrawRequestedAt, rec.Remaining())
	}

	// The withdrawal is paid out; the payer knows its amount and tops up.
	s.mu.Lock()
	delete(s.pending, rec.ChannelID)
	delete(s.withdrawAt, rec.ChannelID)
	s.balance[rec.ChannelID] = big.NewInt(5000)
	s.mu.Unlock()
	rec.SetWithdrawal(big.NewInt(5000), withdrawStart)
	store.Save(rec)
	clock := time.Unix(withdrawStart+600, 0) // before the delay of 900 s ends
	c, cp, _ = shopClient(t, store, big.NewInt(10_000), true)
	cp.Now = func() time.Time { return clock }
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("top-up: %d %v", st, err)
	}
	rec = s.record(t, cp)
	if orZero(rec.PendingWithdrawal).Int64() != 5000 {
		t.Fatalf("a server that shows no withdrawal before the delay ended erased it: pending %s", rec.PendingWithdrawal)
	}
	clock = time.Unix(withdrawStart+901, 0)
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("after the delay: %d %v", st, err)
	}
	if rec = s.record(t, cp); rec.WithdrawalPending() || rec.WithdrawRequestedAt != 0 {
		t.Fatalf("after the delay: pending %s at %d; want none", rec.PendingWithdrawal, rec.WithdrawRequestedAt)
	}
}

// TestUnsendableBodyPaysNothing: when the request body cannot be made again for the paid attempt,
// nothing is sent, and neither the budget nor the deposit budget keeps a reservation, nor does
// the channel record a deposit that was never made.
func TestUnsendableBodyPaysNothing(t *testing.T) {
	s := newChannelShop(t, nil)
	store := channelstore.NewMemory()
	c, cp, tr := shopClient(t, store, big.NewInt(10_000), false)
	cp.DepositBudget = NewBudget(big.NewInt(10_000))
	req, err := http.NewRequest(http.MethodPost, s.server.URL, strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("the body is gone") }
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("status %d; want an error", resp.StatusCode)
	}
	if !errors.Is(err, errNotSent) || !strings.Contains(err.Error(), "the body is gone") {
		t.Fatalf("error %v; want the body's error, marked as not sent", err)
	}
	if s.paid.Load() != 0 {
		t.Fatalf("%d payments reached the server", s.paid.Load())
	}
	if tr.Budget.Spent().Sign() != 0 || cp.DepositBudget.Remaining().Int64() != 10_000 {
		t.Fatalf("budget spent %s, deposit budget left %s; want both untouched", tr.Budget.Spent(), cp.DepositBudget.Remaining())
	}
	if rs, _ := store.List(); len(rs) != 0 {
		t.Fatalf("records %+v: a deposit that was never sent was recorded", rs[0])
	}
	// The channel is free and the payer pays normally afterwards.
	if st, err := getStatus(t, c, s.server.URL); err != nil || st != 200 {
		t.Fatalf("next request: %d %v", st, err)
	}
	wantAmounts(t, s.record(t, cp), 10_000, 10_000, 1000)
}

// TestSettledNotSentGivesBackTheDeposit: a payload reported as never sent leaves no trace: the
// deposit budget gets its reservation back and no unconfirmed deposit is recorded.
func TestSettledNotSentGivesBackTheDeposit(t *testing.T) {
	s := newChannelShop(t, nil)
	store := channelstore.NewMemory()
	_, cp, _ := shopClient(t, store, big.NewInt(10_000), false)
	cp.DepositBudget = NewBudget(big.NewInt(10_000))
	req := s.offer.Requirements(s.price)
	for round := 0; round < 2; round++ { // the second round proves the channel was released
		pp, err := cp.CreatePayload(req, &x402.ResourceInfo{URL: s.server.URL})
		if err != nil {
			t.Fatal(err)
		}
		if cp.DepositBudget.Remaining().Sign() != 0 {
			t.Fatalf("deposit budget left %s; want the deposit reserved", cp.DepositBudget.Remaining())
		}
		if cp.Settled(context.Background(), pp, nil, fmt.Errorf("%w: encode", errNotSent)) {
			t.Fatal("asked for a retry")
		}
		if cp.DepositBudget.Remaining().Int64() != 10_000 {
			t.Fatalf("deposit budget left %s; want the reservation back", cp.DepositBudget.Remaining())
		}
		if _, rec, err := cp.Channel(req); err != nil || rec != nil {
			t.Fatalf("record %+v %v; want none", rec, err)
		}
	}
}
