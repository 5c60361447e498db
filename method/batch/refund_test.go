package batchmethod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// gatedRefundChain is an escrow whose refund transactions wait at a gate, so that vouchers can be
// judged while a refund is in flight; the outcome sent through release decides whether it lands.
// Without the gate channels every refund lands at once.
// The real escrow's refunds are tested end to end in internal/app and against the official
// client in interop; this pins down the interleaving, which a real chain cannot.
type gatedRefundChain struct {
	slowDepositChain
	entered chan struct{}
	release chan error
}

func (c *gatedRefundChain) Send(_ context.Context, _ common.Address, data []byte, _ func(common.Hash) error) (common.Hash, error) {
	if c.entered != nil {
		c.entered <- struct{}{}
		if err := <-c.release; err != nil {
			return common.Hash{}, err
		}
	}
	call, err := decodeEscrowCall(data)
	if err != nil || len(call.claims) != 1 || call.refundAmount == nil {
		return common.Hash{}, fmt.Errorf("%w: not a claim and refund: %v", txn.ErrNotSent, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if call.nonce.Cmp(c.state.RefundNonce) != 0 {
		return common.Hash{}, fmt.Errorf("refund nonce %s, escrow at %s", call.nonce, c.state.RefundNonce)
	}
	c.state.TotalClaimed = new(big.Int).Set(call.claims[0].TotalClaimed)
	c.state.Balance = new(big.Int).Sub(c.state.Balance, call.refundAmount)
	c.state.RefundNonce = new(big.Int).Add(c.state.RefundNonce, big.NewInt(1))
	c.state.Block++
	return common.HexToHash("0x77"), nil
}

func (c *gatedRefundChain) WaitMined(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	return minedAtOnce{}.WaitMined(ctx, h)
}

// TestRefundInFlightHoldsTheFunds: while a cooperative refund's transaction is in flight, a
// voucher spending the funds being refunded is refused. A refund whose transaction certainly had
// no effect gives them back; one that lands leaves exactly the charged total in the channel.
func TestRefundInFlightHoldsTheFunds(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	offer, verifier, receiverKey, signer := newTestOffer(t)
	chain := &gatedRefundChain{entered: make(chan struct{}), release: make(chan error)}
	chain.state = store.ChannelChainState{Balance: big.NewInt(0), TotalClaimed: big.NewInt(0),
		PendingWithdrawal: big.NewInt(0), RefundNonce: big.NewInt(0), Block: 5}
	m := &Method{Offer: offer, Verifier: verifier, Store: st, Chain: chain,
		Refunds: &Refunds{Chain: chain, Authorizer: receiverKey, MarkClaimed: st.MarkChannelClaimed}}
	req := offer.Requirements(big.NewInt(1000))
	authorize := func(p *batch.Payload, err error) (paywall.Charge, error) {
		if err != nil {
			t.Fatal(err)
		}
		pp, err := batch.PaymentPayload(req, nil, p)
		if err != nil {
			t.Fatal(err)
		}
		return m.Authorize(ctx, req, pp, paywall.RequestInfo{Method: "GET", Route: "/v1/quote"})
	}
	pay := func(p *batch.Payload, err error) error {
		c, err := authorize(p, err)
		if err == nil {
			_, err = c.Complete(ctx)
		}
		return err
	}
	wantReason := func(err error, want x402.Reason) {
		t.Helper()
		if reason, _ := x402.ReasonOf(err); reason != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	}
	if err := pay(signer.DepositPayload(req, big.NewInt(10_000), big.NewInt(1000))); err != nil {
		t.Fatalf("deposit: %v", err)
	}
	if err := pay(signer.VoucherPayload(req, big.NewInt(2000))); err != nil {
		t.Fatalf("voucher 2000: %v", err)
	}

	// startRefund authorizes a refund at the charged total and runs it up to the gate.
	startRefund := func(charged int64) (paywall.Standalone, chan error) {
		c, err := authorize(signer.RefundPayload(req, big.NewInt(charged), nil))
		if err != nil {
			t.Fatalf("refund at %d: %v", charged, err)
		}
		refund, ok := c.(paywall.Standalone)
		if !ok {
			t.Fatalf("a refund charge must be standalone (the handler must not run), got %T", c)
		}
		done := make(chan error, 1)
		go func() { _, err := refund.Complete(ctx); done <- err }()
		<-chain.entered
		return refund, done
	}

	// A refund whose transaction was never sent: the held 8000 come back.
	_, done := startRefund(2000)
	wantReason(pay(signer.VoucherPayload(req, big.NewInt(3000))), x402.ReasonBatchCumulativeExceedsBalance)
	chain.release <- fmt.Errorf("%w: node refused: nonce too low", txn.ErrNotSent)
	wantReason(<-done, x402.ReasonBatchRefundTransactionFailed)
	if err := pay(signer.VoucherPayload(req, big.NewInt(3000))); err != nil {
		t.Fatalf("voucher 3000 after a refund that had no effect: %v", err)
	}

	// A refund that lands: 7000 back, and the channel keeps exactly what was charged.
	refund, done := startRefund(3000)
	wantReason(pay(signer.VoucherPayload(req, big.NewInt(4000))), x402.ReasonBatchCumulativeExceedsBalance)
	chain.release <- nil
	if err := <-done; err != nil {
		t.Fatalf("refund: %v", err)
	}
	var body struct{ ChannelID, Refunded string }
	if err := json.Unmarshal(refund.Body(), &body); err != nil || body.Refunded != "7000" || body.ChannelID == "" {
		t.Fatalf("refund body %s: %v", refund.Body(), err)
	}
	ch, err := st.GetChannel(ctx, body.ChannelID)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Balance.Int64() != 3000 || ch.Charged.Int64() != 3000 || ch.Claimed.Int64() != 3000 || ch.RefundHold.Sign() != 0 {
		t.Fatalf("after the refund: balance %s, charged %s, claimed %s, hold %s", ch.Balance, ch.Charged, ch.Claimed, ch.RefundHold)
	}
	wantReason(pay(signer.VoucherPayload(req, big.NewInt(4000))), x402.ReasonBatchCumulativeExceedsBalance)
}

// TestPartialRefundsHaveAMinimum: a partial refund below the minimum deposit is refused before
// anything is held or sent (each refund costs the provider a transaction); one at the minimum, and
// one for exactly what is left however small, go through.
func TestPartialRefundsHaveAMinimum(t *testing.T) {
	st := openStore(t)
	offer, verifier, receiverKey, signer := newTestOffer(t)
	chain := &gatedRefundChain{}
	chain.state = store.ChannelChainState{Balance: big.NewInt(0), TotalClaimed: big.NewInt(0),
		PendingWithdrawal: big.NewInt(0), RefundNonce: big.NewInt(0), Block: 5}
	m := &Method{Offer: offer, Verifier: verifier, Store: st, Chain: chain,
		Refunds: &Refunds{Chain: chain, Authorizer: receiverKey, MarkClaimed: st.MarkChannelClaimed}}
	req := offer.Requirements(big.NewInt(1000)) // minimum deposit: 10 × 1000
	pay := paysWith(t, m, req)
	if _, err := pay(signer.DepositPayload(req, big.NewInt(30_000), big.NewInt(1000))); err != nil {
		t.Fatalf("deposit: %v", err)
	}
	refund := func(amount int64) (*x402.SettlementResponse, error) {
		return pay(signer.RefundPayload(req, big.NewInt(1000), big.NewInt(amount)))
	}
	if _, err := refund(9_999); !hasReason(err, x402.ReasonBatchRefundAmountInvalid) {
		t.Fatalf("refund of 9999 (minimum 10000): got %v, want %s", err, x402.ReasonBatchRefundAmountInvalid)
	}
	if r, err := refund(10_000); err != nil || r.Amount != "10000" {
		t.Fatalf("refund at the minimum: %+v %v", r, err)
	}
	// 30000 − 10000 refunded − 1000 charged leaves 19000; take 12000, then the last 7000.
	if r, err := refund(12_000); err != nil || r.Amount != "12000" {
		t.Fatalf("refund of 12000: %+v %v", r, err)
	}
	if _, err := refund(6_999); !hasReason(err, x402.ReasonBatchRefundAmountInvalid) {
		t.Fatalf("refund of 6999 of the 7000 left: got %v, want %s", err, x402.ReasonBatchRefundAmountInvalid)
	}
	if r, err := refund(7_000); err != nil || r.Amount != "7000" {
		t.Fatalf("refund of all that is left, below the minimum: %+v %v", r, err)
	}
	if chain.state.Balance.Int64() != 1000 {
		t.Fatalf("escrow balance %s, want the 1000 charged", chain.state.Balance)
	}
}

// paysWith pays m for req with a signed payload as the paywall would: Authorize, then Complete.
func paysWith(t *testing.T, m *Method, req x402.PaymentRequirements) func(*batch.Payload, error) (*x402.SettlementResponse, error) {
	return func(p *batch.Payload, err error) (*x402.SettlementResponse, error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		pp, err := batch.PaymentPayload(req, nil, p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Authorize(context.Background(), req, pp, paywall.RequestInfo{Method: "GET", Route: "/v1/quote"})
		if err != nil {
			return nil, err
		}
		return c.Complete(context.Background())
	}
}

func hasReason(err error, want x402.Reason) bool {
	reason, _ := x402.ReasonOf(err)
	return reason == want
}

// blindAfterRefund is an escrow that cannot be read once a refund went out (the RPC failed right
// after the transaction was mined).
type blindAfterRefund struct{ gatedRefundChain }

func (c *blindAfterRefund) ChannelState(ctx context.Context, id common.Hash) (store.ChannelChainState, error) {
	if c.state.RefundNonce.Sign() > 0 {
		return store.ChannelChainState{}, errors.New("rpc down")
	}
	return c.gatedRefundChain.ChannelState(ctx, id)
}

// TestMinedRefundIsReportedEvenIfTheChainCannotBeRead: once the refund transaction is mined the
// payer is told so, with the state the refund leaves, even when the channel cannot be read again.
func TestMinedRefundIsReportedEvenIfTheChainCannotBeRead(t *testing.T) {
	st := openStore(t)
	offer, verifier, receiverKey, signer := newTestOffer(t)
	chain := &blindAfterRefund{}
	chain.state = store.ChannelChainState{Balance: big.NewInt(0), TotalClaimed: big.NewInt(0),
		PendingWithdrawal: big.NewInt(0), RefundNonce: big.NewInt(0), Block: 5}
	m := &Method{Offer: offer, Verifier: verifier, Store: st, Chain: chain,
		Refunds: &Refunds{Chain: chain, Authorizer: receiverKey, MarkClaimed: st.MarkChannelClaimed}}
	req := offer.Requirements(big.NewInt(1000))
	pay := paysWith(t, m, req)
	if _, err := pay(signer.DepositPayload(req, big.NewInt(30_000), big.NewInt(1000))); err != nil {
		t.Fatalf("deposit: %v", err)
	}
	r, err := pay(signer.RefundPayload(req, big.NewInt(1000), nil))
	if err != nil || !r.Success || r.Amount != "29000" {
		t.Fatalf("refund whose channel cannot be read afterwards: %+v %v; want success, 29000", r, err)
	}
	state, _ := r.Extra["channelState"].(batch.ChannelState)
	if state.Balance == nil || state.Balance.Int64() != 1000 || state.RefundNonce.Int64() != 1 {
		t.Fatalf("reported state %+v, want the 1000 left after the refund", state)
	}
}
