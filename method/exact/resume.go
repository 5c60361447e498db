package exactmethod

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// An exact charge can end before its transaction is mined (settlement_pending): the record stays
// submitted and the reconciler finishes it. Ref and Resume let a caller who retries the same
// payment learn how it ended, on any replica: they name the payment record and read it back.

// refPrefix marks references to exact payment records.
const refPrefix = "exact:"

// resumeReceiptWait bounds the receipt lookup a retry makes while its payment is still
// submitted; the reconciler keeps looking after that.
const resumeReceiptWait = 3 * time.Second

// paymentReader is the read a resume needs. Method's Ledger provides it when it is the store;
// it is asserted rather than added to Ledger so that a ledger without it still settles.
type paymentReader interface {
	GetPayment(ctx context.Context, id int64) (*store.Payment, error)
}

// Ref implements paywall.Resumable: the payment record's id.
func (c *charge) Ref() string { return refPrefix + strconv.FormatInt(c.id, 10) }

// Resume implements paywall.Resumer. A payment still submitted is looked up on chain once,
// briefly, and recorded settled or failed when its receipt is there, as the reconciler would.
// It never sends anything.
func (e *Method) Resume(ctx context.Context, ref string) (*x402.SettlementResponse, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(ref, refPrefix), 10, 64)
	if err != nil || !strings.HasPrefix(ref, refPrefix) {
		return nil, x402.Failf(x402.ReasonUnexpectedSettleError, "unknown charge reference %q", ref)
	}
	reader, ok := e.Ledger.(paymentReader)
	if !ok {
		return nil, fmt.Errorf("%w: the ledger cannot look payments up", paywall.ErrUnavailable)
	}
	p, err := reader.GetPayment(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, x402.Failf(x402.ReasonUnexpectedSettleError, "payment %d is not recorded", id)
	case err != nil:
		return nil, fmt.Errorf("%w: read payment %d: %w", paywall.ErrUnavailable, id, err)
	}
	switch p.Status {
	case store.StatusSettled:
		return settledResponse(p, p.TxHash), nil
	case store.StatusReleased:
		return nil, fmt.Errorf("payment %d: %w", id, paywall.ErrChargeReleased)
	case store.StatusFailed:
		reason := x402.Reason(p.ErrorReason)
		if reason == "" {
			reason = x402.ReasonUnexpectedSettleError
		}
		return failedResponse(p, reason), x402.Failf(reason, "the payment was not settled")
	case store.StatusSubmitted:
		return e.resumeSubmitted(ctx, p)
	}
	return pendingResponse(p), x402.Failf(x402.ReasonSettlementPending, "the payment is not sent yet")
}

func (e *Method) resumeSubmitted(ctx context.Context, p *store.Payment) (*x402.SettlementResponse, error) {
	wctx, cancel := context.WithTimeout(ctx, resumeReceiptWait)
	receipt, err := e.Chain.WaitMined(wctx, common.HexToHash(p.TxHash))
	cancel()
	switch {
	case err == nil:
		hash := receipt.TxHash.Hex()
		if err := e.Ledger.MarkSettled(ctx, p.ID, hash); err != nil {
			e.log().Warn("recording a settlement found by a retry failed; the reconciler records it", "payment", p.ID, "err", err)
		}
		return settledResponse(p, hash), nil
	case errors.Is(err, txn.ErrFailed):
		if err := e.Ledger.MarkFailed(ctx, p.ID, string(x402.ReasonExactTransactionFailed)); err != nil && !errors.Is(err, store.ErrConflict) {
			e.log().Warn("recording a reverted settlement failed", "payment", p.ID, "err", err)
		}
		return failedResponse(p, x402.ReasonExactTransactionFailed), x402.Failf(x402.ReasonExactTransactionFailed, "the settlement transaction reverted")
	}
	return pendingResponse(p), x402.Failf(x402.ReasonSettlementPending, "settlement transaction %s is not mined yet", p.TxHash)
}

func settledResponse(p *store.Payment, tx string) *x402.SettlementResponse {
	return &x402.SettlementResponse{Success: true, Payer: common.HexToAddress(p.Payer).Hex(), Transaction: common.HexToHash(tx).Hex(),
		Network: p.Network, Amount: p.Amount.String()}
}

func failedResponse(p *store.Payment, reason x402.Reason) *x402.SettlementResponse {
	return &x402.SettlementResponse{ErrorReason: string(reason), Payer: common.HexToAddress(p.Payer).Hex(), Network: p.Network}
}

func pendingResponse(p *store.Payment) *x402.SettlementResponse {
	return failedResponse(p, x402.ReasonSettlementPending)
}

var (
	_ paywall.Resumer   = (*Method)(nil)
	_ paywall.Resumable = (*charge)(nil)
)
