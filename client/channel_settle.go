package client

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// maxHeaderBytes bounds the payment headers a server may send back.
const maxHeaderBytes = 64 << 10

// Settled implements Settler: it records what the server answered to a payload of this payer
// and releases the channel. It asks for a retry after a corrective 402 it could verify and
// adopt, after learning that a deposit whose outcome was unknown never happened, or after a
// refusal for lack of funds that a deposit can now make up.
func (p *ChannelPayer) Settled(_ context.Context, sent *x402.PaymentPayload, resp *http.Response, err error) bool {
	p.mu.Lock()
	a := p.inflight[sent]
	delete(p.inflight, sent)
	p.mu.Unlock()
	if a == nil {
		return false
	}
	defer p.unlock(a.ref.id)
	if errors.Is(err, errNotSent) {
		p.refundDeposit(a) // nothing reached the server: no deposit was made, no voucher used
		return false
	}
	rec, lerr := p.loadOrNew(a.ref)
	if lerr != nil {
		p.log().Error("channel state unreadable; the payment's outcome is not recorded", "channel", a.ref.id.Hex(), "err", lerr)
		return false
	}
	rec.SignedMax = maxOf(orZero(rec.SignedMax), a.max)
	rec.AddOrigin(a.resource)
	retry := false
	switch {
	case err != nil || resp == nil:
		p.unknownOutcome(rec, a)
	case p.settledOK(rec, a, resp):
	case resp.StatusCode == http.StatusPaymentRequired:
		p.refundDeposit(a) // a refused deposit is never submitted
		retry = p.learnFrom402(rec, a, resp)
	default:
		// No settlement: the server did not serve the request, or failed after taking it. A
		// voucher is then not charged, but a deposit may already be on chain.
		p.unknownOutcome(rec, a)
	}
	if p.save(rec) != nil {
		return false
	}
	return retry
}

// unknownOutcome keeps a deposit that may have landed as unconfirmed: the next voucher relies
// on it, and a refusal of that voucher clears it.
func (p *ChannelPayer) unknownOutcome(rec *channelstore.Record, a *channelAttempt) {
	if a.deposit != nil {
		rec.Unconfirmed = new(big.Int).Set(a.deposit)
	}
}

// settledOK applies a successful PAYMENT-RESPONSE and reports whether there was one.
func (p *ChannelPayer) settledOK(rec *channelstore.Record, a *channelAttempt, resp *http.Response) bool {
	h := resp.Header.Get(x402.HeaderPaymentResponse)
	if h == "" {
		return false
	}
	s, err := batch.DecodeSettlementResponse(h, maxHeaderBytes)
	if err != nil {
		p.log().Warn("undecodable PAYMENT-RESPONSE on a channel payment", "channel", a.ref.id.Hex(), "err", err)
		return false
	}
	if !s.Success {
		return false
	}
	if a.deposit != nil {
		rec.Deposited = new(big.Int).Add(orZero(rec.Deposited), a.deposit)
		if strings.HasPrefix(s.Transaction, "0x") && len(s.Transaction) == 66 {
			rec.LastDepositTx = common.HexToHash(s.Transaction)
		}
	}
	// The server may charge less than the price, never more than the voucher allows.
	charged := a.max
	var state *batch.ChannelState
	if s.Extra != nil && s.Extra.ChannelState != nil && s.Extra.ChannelState.ChannelID == a.ref.id {
		state = s.Extra.ChannelState
	}
	if state != nil && state.ChargedCumulativeAmount != nil && state.ChargedCumulativeAmount.Cmp(a.max) <= 0 {
		charged = state.ChargedCumulativeAmount
	}
	rec.Charged = new(big.Int).Set(charged)
	if a.deposit == nil && rec.Unconfirmed != nil {
		// A voucher that relied on the unconfirmed deposit was accepted: the deposit landed.
		rec.Deposited = new(big.Int).Add(orZero(rec.Deposited), rec.Unconfirmed)
	}
	if state != nil {
		rec.Balance = new(big.Int).Set(orZero(state.Balance))
		rec.TotalClaimed = new(big.Int).Set(orZero(state.TotalClaimed))
		p.adoptWithdrawal(rec, state, a.deposit)
	} else {
		// No snapshot: count what this payer knows it added.
		rec.Balance = new(big.Int).Add(orZero(rec.Balance), orZero(a.deposit))
		rec.Balance.Add(rec.Balance, orZero(rec.Unconfirmed))
	}
	rec.Unconfirmed = nil
	return true
}

// learnFrom402 reads a 402 answering a payment and reports whether a retry is worthwhile.
func (p *ChannelPayer) learnFrom402(rec *channelstore.Record, a *channelAttempt, resp *http.Response) bool {
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), maxHeaderBytes)
	if err != nil {
		return false
	}
	switch {
	case isReason(pr.Error, x402.ReasonBatchCumulativeAmountMismatch, x402.ReasonBatchCumulativeBelowClaimed):
		for _, o := range pr.Accepts {
			if !x402.SameOffer(o, a.req) {
				continue
			}
			adopted, err := p.resync(rec, a.ref, a.base, o.Extra)
			if err != nil {
				p.log().Warn("corrective 402 not adopted", "channel", a.ref.id.Hex(), "err", err)
			}
			return adopted
		}
		return false
	case rec.Unconfirmed != nil && a.deposit == nil &&
		isReason(pr.Error, x402.ReasonBatchCumulativeExceedsBalance, x402.ReasonBatchChannelNotFound):
		// The deposit whose outcome never came back did not happen: deposit again.
		rec.Unconfirmed = nil
		return true
	case rec.Unconfirmed == nil && isReason(pr.Error, x402.ReasonBatchCumulativeExceedsBalance):
		return p.learnShortfall(rec, a)
	}
	return false
}

// learnShortfall handles a payment refused as more than the channel can pay when no unconfirmed
// deposit explains it: the server holds back funds the record does not, most likely for a
// withdrawal started elsewhere. The refusal proves the server counts more than
// Balance + deposit − voucher as withdrawn, so the record's pending withdrawal grows to that; the
// next payment then tops up or goes elsewhere instead of being refused again. A retry is
// worthwhile when a deposit may now be made.
func (p *ChannelPayer) learnShortfall(rec *channelstore.Record, a *channelAttempt) bool {
	atLeast := new(big.Int).Add(orZero(rec.Balance), orZero(a.deposit))
	atLeast.Sub(atLeast, a.max)
	atLeast.Add(atLeast, big.NewInt(1))
	if atLeast.Cmp(orZero(rec.PendingWithdrawal)) <= 0 {
		return false // nothing learned: a retry would be refused the same way
	}
	p.log().Info("the server holds back more of the channel than known; counting it as a pending withdrawal",
		"channel", a.ref.id.Hex(), "pending", atLeast)
	rec.SetWithdrawal(atLeast, rec.WithdrawRequestedAt)
	price := new(big.Int).Sub(a.max, a.base)
	deposit, err := p.depositNeeded(a.req, rec, price)
	return err == nil && deposit != nil
}

// adoptWithdrawal brings the record's pending withdrawal in line with a server snapshot. The
// snapshot tells whether a withdrawal is pending (withdrawRequestedAt) but not its amount, which
// only the payer that started it knows; deposited is a deposit the snapshot already counts.
func (p *ChannelPayer) adoptWithdrawal(rec *channelstore.Record, st *batch.ChannelState, deposited *big.Int) {
	known := rec.WithdrawalPending()
	switch {
	case st.WithdrawRequestedAt != 0 && known && (rec.WithdrawRequestedAt == 0 || rec.WithdrawRequestedAt == st.WithdrawRequestedAt):
		rec.WithdrawRequestedAt = st.WithdrawRequestedAt // the one on record
	case st.WithdrawRequestedAt != 0:
		// One started elsewhere: it is at most what was unclaimed, before this answer's deposit.
		most := new(big.Int).Sub(orZero(st.Balance), orZero(st.TotalClaimed))
		most.Sub(most, orZero(deposited))
		rec.SetWithdrawal(most, st.WithdrawRequestedAt)
	case known && rec.WithdrawRequestedAt != 0 && uint64(p.now().Unix()) < rec.WithdrawRequestedAt+rec.Config.WithdrawDelay:
		// Too early to have been paid out: the server has not seen it yet.
	default:
		rec.SetWithdrawal(nil, 0) // paid out, taken by a refund, or never there
	}
}

// resync adopts the channel state of a corrective 402 when the server backs its charged total
// with a voucher this payer signed (or the total is no more than the payer has signed anyway),
// and reports whether it differs from base, the total the refused payment built on.
func (p *ChannelPayer) resync(rec *channelstore.Record, ref channelRef, base *big.Int, extra map[string]any) (bool, error) {
	e, err := batch.ParseRequirementsExtra(extra)
	if err != nil {
		return false, err
	}
	st := e.ChannelState
	if st == nil || st.ChargedCumulativeAmount == nil {
		return false, fmt.Errorf("client: corrective 402 without the channel's charged total")
	}
	if st.ChannelID != ref.id {
		return false, fmt.Errorf("client: corrective 402 describes channel %s, not %s", st.ChannelID.Hex(), ref.id.Hex())
	}
	charged := st.ChargedCumulativeAmount
	if vs := e.VoucherState; vs != nil && vs.SignedMaxClaimable != nil && len(vs.Signature) > 0 {
		if charged.Cmp(vs.SignedMaxClaimable) > 0 {
			return false, fmt.Errorf("%w: charged %s is above the voucher of %s", ErrUnverifiedChannelState, charged, vs.SignedMaxClaimable)
		}
		digest := batch.Voucher{ChannelID: ref.id, MaxClaimableAmount: vs.SignedMaxClaimable}.Digest(ref.separator)
		signer, err := evmsig.RecoverSigner(digest, vs.Signature)
		if err != nil || signer != ref.config.PayerAuthorizer {
			return false, fmt.Errorf("%w: the voucher of %s is not signed by %s", ErrUnverifiedChannelState, vs.SignedMaxClaimable, ref.config.PayerAuthorizer.Hex())
		}
		rec.SignedMax = maxOf(orZero(rec.SignedMax), vs.SignedMaxClaimable)
	} else if charged.Cmp(orZero(rec.SignedMax)) > 0 {
		return false, fmt.Errorf("%w: charged %s comes with no voucher, and this payer signed only %s", ErrUnverifiedChannelState, charged, orZero(rec.SignedMax))
	}
	if charged.Cmp(base) == 0 {
		return false, nil // nothing new: a retry would be refused the same way
	}
	p.log().Info("channel resynchronised from the server", "channel", ref.id.Hex(), "charged", charged, "was", base)
	if rec.Unconfirmed != nil && orZero(st.Balance).Cmp(new(big.Int).Add(orZero(rec.Balance), rec.Unconfirmed)) >= 0 {
		rec.Deposited = new(big.Int).Add(orZero(rec.Deposited), rec.Unconfirmed) // it landed after all
	}
	rec.Charged = new(big.Int).Set(charged)
	rec.Balance = new(big.Int).Set(orZero(st.Balance))
	rec.TotalClaimed = new(big.Int).Set(orZero(st.TotalClaimed))
	rec.Unconfirmed = nil
	p.adoptWithdrawal(rec, st, nil)
	return true, nil
}

// isReason reports whether a 402 error names one of reasons (it may carry a message after it).
func isReason(got string, reasons ...x402.Reason) bool {
	for _, r := range reasons {
		if got == string(r) || strings.HasPrefix(got, string(r)+":") || strings.HasPrefix(got, string(r)+" ") {
			return true
		}
	}
	return false
}
