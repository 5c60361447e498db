package batchmethod

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// RefundChain is what a cooperative refund needs of the chain: sending its transaction through
// the settlement engine, and reading the channel it leaves.
type RefundChain interface {
	settle.TxChain
	ChannelState(ctx context.Context, id common.Hash) (store.ChannelChainState, error)
}

// Refunds lets Method answer cooperative refund requests. Authorizer is the channels' receiver
// authorizer, which signs the claim and the refund.
type Refunds struct {
	Chain      RefundChain
	Authorizer *ecdsa.PrivateKey
	// MarkClaimed records the claim that rides along with the refund.
	MarkClaimed func(ctx context.Context, id string, from, to *big.Int) error
}

// authorizeRefund verifies a zero-charge refund voucher (exactly the charged total). The refund
// itself runs in Complete: the outstanding voucher is claimed for the provider and the rest of the
// unclaimed balance (or the amount asked for) goes back to the payer, in one transaction.
func (m *Method) authorizeRefund(ctx context.Context, req x402.PaymentRequirements, terms batch.Terms, pl *batch.Payload) (paywall.Charge, error) {
	if m.Refunds == nil {
		return nil, x402.Failf(x402.ReasonBatchRefundPayload, "this gateway does not take refund requests")
	}
	id, err := m.Verifier.CheckChannel(terms, pl)
	if err != nil {
		return nil, err
	}
	ch, err := m.channel(ctx, id, pl.ChannelConfig)
	if err != nil {
		return nil, err
	}
	v, err := m.Verifier.VerifyRefund(terms, snapshot(ch), pl)
	if err != nil {
		return nil, verifyError(err)
	}
	available := new(big.Int).Sub(ch.Balance, ch.Charged)
	amount := available
	if pl.RefundAmount != nil {
		if pl.RefundAmount.Sign() <= 0 || pl.RefundAmount.Cmp(available) > 0 {
			return nil, x402.Failf(x402.ReasonBatchRefundAmountExceedsBalance, "refund %s exceeds the unspent %s", pl.RefundAmount, available)
		}
		// Every refund is a transaction the provider pays for, so a partial one must move at
		// least what the smallest deposit would: otherwise a payer could ask for one atomic unit
		// at a time and make the provider pay gas for each.
		if min := m.Offer.MinDepositFor(terms.Price); pl.RefundAmount.Cmp(available) < 0 && pl.RefundAmount.Cmp(min) < 0 {
			return nil, x402.Failf(x402.ReasonBatchRefundAmountInvalid,
				"a partial refund must be at least %s (the minimum deposit); ask for at least that, or for everything unspent (%s)", min, available)
		}
		amount = pl.RefundAmount
	}
	// Hold the refund before anything else can happen: a voucher racing this refund is refused
	// (its compare-and-set fails, and judged again it finds the funds held), so nothing is served
	// on funds the refund sends back. A charge that won the race makes this hold fail instead,
	// and the refund voucher is then stale. The hold outlives chain syncs until the refund lands.
	hctx, cancel := storeContext(ctx)
	defer cancel()
	err = m.Store.HoldChannelRefund(hctx, store.ChannelRefundHold{ID: ch.ID, ExpectedCharged: ch.Charged,
		ChainVersion: ch.ChainVersion, Amount: amount, Until: m.now().Add(refundHoldFor)})
	m.forget(ch.ID)
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, x402.Failf(x402.ReasonBatchRefundPayload, "the channel changed while the refund was checked, or another refund is under way; sign it again for the current charged total")
	case err != nil:
		return nil, fmt.Errorf("%w: %w", paywall.ErrUnavailable, err)
	}
	return &refundCharge{m: m, network: req.Network, channel: *ch, payload: pl, payer: v.Payer, amount: amount}, nil
}

// refundHoldFor is how long a refund hold lasts if its refund never goes out. It is far longer
// than a refund takes (the request, then one transaction mined within the charge timeout).
const refundHoldFor = 10 * time.Minute

type refundCharge struct {
	m       *Method
	network string
	channel store.Channel // as judged, before the hold
	payload *batch.Payload
	payer   common.Address
	amount  *big.Int
}

func (r *refundCharge) Payer() string { return r.payer.Hex() }

// A refund request buys no response from the protected handler: the paywall answers it with
// Body once the refund is mined.
var _ paywall.Standalone = (*refundCharge)(nil)

// Body is the answer to a completed refund request.
func (r *refundCharge) Body() []byte {
	b, _ := json.Marshal(struct {
		ChannelID string `json:"channelId"`
		Refunded  string `json:"refunded"`
	}{r.channel.ID, r.amount.String()})
	return b
}

// Cancel gives the held balance back: nothing was charged and no transaction was sent. The
// paywall runs no handler for a refund, so nothing calls it today; it stays for the Charge
// contract.
func (r *refundCharge) Cancel(ctx context.Context, reason string) {
	r.release(ctx, reason)
}

// release drops the hold of a refund that did not happen. When a sync has cleared it already,
// there is nothing to drop.
func (r *refundCharge) release(ctx context.Context, reason string) {
	m := r.m
	m.forget(r.channel.ID)
	err := m.Store.ReleaseChannelRefund(ctx, r.channel.ID, r.amount)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		m.log().Error("releasing a refund hold failed; the funds stay unspendable until the refund nonce moves", "channel", r.channel.ID, "reason", reason, "err", err)
	}
}

func (r *refundCharge) Complete(ctx context.Context) (*x402.SettlementResponse, error) {
	m, ch := r.m, r.channel
	id := common.HexToHash(ch.ID)
	sep := m.Verifier.Separator()
	// The claim riding along takes only final charges; the amount of a request still in flight
	// stays in the channel (the refund never takes it: see available in authorizeRefund).
	final := ch.Final()
	claim := batch.VoucherClaim{Channel: r.payload.ChannelConfig, MaxClaimableAmount: ch.SignedMax,
		Signature: common.FromHex(ch.Signature), TotalClaimed: final}
	claimSig, err := evmsig.SignDigest(m.Refunds.Authorizer, batch.ClaimBatchOf(sep, []batch.VoucherClaim{claim}).Digest(sep))
	if err != nil {
		return nil, err
	}
	refundSig, err := evmsig.SignDigest(m.Refunds.Authorizer, batch.Refund{ChannelID: id, Nonce: ch.RefundNonce, Amount: r.amount}.Digest(sep))
	if err != nil {
		return nil, err
	}
	data, err := claimAndRefundData(claim, claimSig, r.amount, ch.RefundNonce, refundSig)
	if err != nil {
		r.release(ctx, "refund_transaction_failed")
		return nil, x402.Fail(x402.ReasonBatchRefundTransactionFailed, "the refund transaction failed", err)
	}
	sent := settle.SendAndWait(ctx, m.Refunds.Chain, settle.Call{To: escrow.BatchSettlementAddress, Data: data,
		UnknownWait: settle.DefaultUnknownWait, Logger: m.log()})
	if err := sent.Err; err != nil {
		// A transaction whose fate is unknown may still move the funds: the hold stays until the
		// watcher records what happened. One never sent, or mined and reverted, changed nothing.
		if errors.Is(err, txn.ErrNotSent) || errors.Is(err, txn.ErrFailed) {
			r.release(ctx, "refund_transaction_failed")
		}
		return nil, x402.Fail(x402.ReasonBatchRefundTransactionFailed, "the refund transaction failed", err)
	}
	tx := sent.Tx
	if m.Refunds.MarkClaimed != nil {
		if err := m.Refunds.MarkClaimed(ctx, ch.ID, ch.Claimed, final); err != nil && !errors.Is(err, store.ErrConflict) {
			m.log().Error("recording the claim of a refund failed", "channel", ch.ID, "tx", tx, "err", err)
		}
	}
	after := ch
	if st, err := m.Refunds.Chain.ChannelState(ctx, id); err == nil {
		if err := m.Store.SyncChannel(ctx, ch.ID, st); err != nil {
			m.log().Warn("recording a refunded channel failed", "channel", ch.ID, "err", err)
		}
		after.Balance, after.TotalClaimed, after.RefundNonce, after.PendingWithdrawal = st.Balance, st.TotalClaimed, st.RefundNonce, st.PendingWithdrawal
	} else {
		// The refund is mined: the payer must hear it succeeded, not that nothing happened. The
		// state it leaves follows from the transaction; the watcher records the chain's own.
		m.log().Warn("reading a refunded channel failed; answering with the state the refund leaves", "channel", ch.ID, "tx", tx, "err", err)
		after.Balance = new(big.Int).Sub(ch.Balance, r.amount)
		after.TotalClaimed = final
		after.RefundNonce = new(big.Int).Add(ch.RefundNonce, big.NewInt(1))
	}
	m.forget(ch.ID)
	state := snapshot(&after).ChannelState(id)
	out := batch.RefundResponse(r.network, r.payer, tx, r.amount, state).X402()
	return &out, nil
}
