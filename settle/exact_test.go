package settle

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// fakeLedger records what settlement did to a payment.
type fakeLedger struct{ released, failed, submitted, settled []string }

func (l *fakeLedger) ReservePayment(context.Context, *store.Payment) (int64, error) { return 1, nil }
func (l *fakeLedger) MarkFirstSubmitted(ctx context.Context, id int64, h string) error {
	return l.MarkSubmitted(ctx, id, h)
}
func (l *fakeLedger) MarkSubmitted(_ context.Context, _ int64, h string) error {
	l.submitted = append(l.submitted, h)
	return nil
}
func (l *fakeLedger) MarkSettled(_ context.Context, _ int64, h string) error {
	l.settled = append(l.settled, h)
	return nil
}
func (l *fakeLedger) MarkFailed(_ context.Context, _ int64, r string) error {
	l.failed = append(l.failed, r)
	return nil
}
func (l *fakeLedger) ReleasePayment(_ context.Context, _ int64, r string) error {
	l.released = append(l.released, r)
	return nil
}

// fakeChain mines whatever it is sent at once, and counts the sends.
type fakeChain struct{ sent int }

func (c *fakeChain) BalanceOf(context.Context, common.Address, common.Address) (*big.Int, error) {
	return big.NewInt(1e9), nil
}
func (c *fakeChain) AuthorizationState(context.Context, common.Address, common.Address, common.Hash) (bool, error) {
	return false, nil
}
func (c *fakeChain) Send(_ context.Context, _ common.Address, _ []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	c.sent++
	h := common.HexToHash("0x01")
	return h, onSigned(h)
}
func (c *fakeChain) WaitMined(_ context.Context, h common.Hash) (*types.Receipt, error) {
	return &types.Receipt{TxHash: h, Status: types.ReceiptStatusSuccessful}, nil
}

// TestCompleteChecksTheWindowAgain: right before sending, an authorization must still have the
// inclusion margin left; one that has not is released and nothing is sent.
func TestCompleteChecksTheWindowAgain(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		left, margin time.Duration
		send         bool
	}{
		{10 * time.Second, 6 * time.Second, true},
		{7 * time.Second, 6 * time.Second, true},
		{6 * time.Second, 6 * time.Second, false}, // exactly the margin is too close
		{2 * time.Second, 6 * time.Second, false},
		{time.Second, 0, true},
		{0, 0, false}, // expired: validBefore must be in the future
		{-time.Minute, 0, false},
	}
	for _, tc := range cases {
		ledger, chain := &fakeLedger{}, &fakeChain{}
		e := &Exact{Ledger: ledger, Chain: chain, InclusionMargin: tc.margin, Now: func() time.Time { return now }}
		charge := &exactCharge{e: e, id: 1, network: "eip155:1337", v: &exact.Verified{
			Payload: exact.Payload{Signature: make([]byte, 65), Authorization: exact.Authorization{
				Value: big.NewInt(1000), ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(now.Add(tc.left).Unix()),
			}},
		}}
		s, err := charge.Complete(context.Background())
		if tc.send {
			if err != nil || chain.sent != 1 || s == nil || !s.Success {
				t.Errorf("%s left, margin %s: %v, sent %d; want it settled", tc.left, tc.margin, err, chain.sent)
			}
			continue
		}
		if reason, _ := x402.ReasonOf(err); reason != x402.ReasonExactValidBefore {
			t.Errorf("%s left, margin %s: %v, want %s", tc.left, tc.margin, err, x402.ReasonExactValidBefore)
		}
		if chain.sent != 0 || len(ledger.submitted) != 0 {
			t.Errorf("%s left, margin %s: a transaction was sent", tc.left, tc.margin)
		}
		if len(ledger.released) != 1 || ledger.released[0] != string(x402.ReasonExactValidBefore) {
			t.Errorf("%s left, margin %s: reservation not released: %+v", tc.left, tc.margin, ledger)
		}
	}
}

// downChain is a chain whose every RPC endpoint's breaker is open.
type downChain struct{ fakeChain }

func (c *downChain) Refusing() (time.Duration, bool) { return 4 * time.Second, true }

// TestPaymentsTurnedAwayWhileTheChainIsDown: while every RPC endpoint's breaker is open, an exact
// payment is refused as unavailable at once, with the breaker's wait for Retry-After: nothing is
// verified (the verifier, without a chain it could read, would panic) and nothing reserved.
func TestPaymentsTurnedAwayWhileTheChainIsDown(t *testing.T) {
	ledger := &fakeLedger{}
	e := &Exact{Ledger: ledger, Chain: &downChain{}}
	_, err := e.Authorize(context.Background(), x402.PaymentRequirements{}, &x402.PaymentPayload{}, paywall.RequestInfo{})
	var hint interface{ RetryAfter() time.Duration }
	if !errors.Is(err, paywall.ErrUnavailable) || !errors.As(err, &hint) || hint.RetryAfter() != 4*time.Second {
		t.Fatalf("payment while the chain is down: %v; want unavailable, retry after 4s", err)
	}
}
