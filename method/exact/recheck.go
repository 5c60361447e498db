package exactmethod

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// ReasonTransactionVanished is recorded on a vanished payment whose transaction the chain no
// longer knows and whose authorization was not used otherwise.
const ReasonTransactionVanished = "settlement_transaction_vanished"

// Defaults of the settlement re-check.
const (
	DefaultRecheckWindow = 24 * time.Hour
	DefaultRecheckBatch  = 100
)

// ReconcileChain is what the reconciler reads from the chain.
type ReconcileChain interface {
	Chain
	// LookupTx reports, without waiting, whether a transaction is mined or waiting in the pool.
	LookupTx(ctx context.Context, hash common.Hash) (txn.Status, error)
}

// RecheckOnce checks a page of recent settlements against the chain, newest first, and reports
// how many it found vanished. Successive calls page through every settlement of the last
// RecheckWindow, RecheckBatch at a time, then start over; so a busy gateway spreads the checks
// over several rounds instead of flooding its RPC endpoint. Settlements younger than MinAge are
// left for a later round.
//
// A settlement vanishes when its transaction is no longer on chain (a reorg deeper than the
// confirmations, or a chain that was reset) or was mined again only to revert, and its
// authorization was not used by any other transaction: the request was served and the transfer
// did not happen. The payment is marked vanished and an error is logged with what an operator
// needs to follow it up. A vanished payment whose transaction comes back is settled again.
func (r *Reconciler) RecheckOnce(ctx context.Context) (int, error) {
	r.recheckMu.Lock()
	defer r.recheckMu.Unlock()
	window, batch := r.RecheckWindow, r.RecheckBatch
	if window <= 0 {
		window = DefaultRecheckWindow
	}
	if batch <= 0 {
		batch = DefaultRecheckBatch
	}
	page, err := r.Ledger.RecentSettlements(ctx, r.now().Add(-window), r.recheckCursor, batch)
	if err != nil {
		return 0, err
	}
	if len(page) < batch {
		r.recheckCursor = 0 // the end of the window: start over with the newest
	} else {
		r.recheckCursor = page[len(page)-1].ID
	}
	vanished, now := 0, r.now()
	for _, p := range page {
		if now.Sub(p.UpdatedAt) < r.minAge() {
			// A node a few blocks behind (one of several behind a load balancer) would not know
			// a fresh settlement yet: too young to judge; a later round looks again.
			continue
		}
		gone, err := r.recheck(ctx, p)
		if err != nil {
			r.log().Warn("re-checking a settlement failed", "payment", p.ID, "tx", p.TxHash, "err", err)
			continue
		}
		if gone {
			vanished++
		}
	}
	return vanished, nil
}

// recheck looks up one settled or vanished payment's transaction and reports whether the payment
// vanished now.
func (r *Reconciler) recheck(ctx context.Context, p store.Payment) (bool, error) {
	st, err := r.Chain.LookupTx(ctx, common.HexToHash(p.TxHash))
	if err != nil {
		return false, err
	}
	switch {
	case st.Receipt != nil && st.Receipt.Status == types.ReceiptStatusSuccessful:
		if p.Status == store.StatusVanished {
			r.log().Warn("a vanished settlement is back on chain", "payment", p.ID, "tx", p.TxHash, "block", st.Receipt.BlockNumber)
			return false, r.Ledger.MarkSettled(ctx, p.ID, p.TxHash)
		}
		return false, nil
	case st.Receipt != nil:
		// Mined again after a reorg, and reverted: the authorization had expired by then, say.
		return r.vanish(ctx, p, string(x402.ReasonExactTransactionFailed))
	case st.Pending:
		// Back in the pool after a reorg: it may be mined again. Looked at again next round.
		if p.Status == store.StatusSettled {
			r.log().Warn("a settled payment's transaction is waiting in the pool again", "payment", p.ID, "tx", p.TxHash)
		}
		return false, nil
	}
	used, err := r.Chain.AuthorizationState(ctx, common.HexToAddress(p.Asset), common.HexToAddress(p.Payer), common.HexToHash(p.Nonce))
	if err != nil {
		return false, err
	}
	if used {
		// Another transaction carried the same authorization (someone relayed it): the transfer
		// to the payee happened all the same, under a hash the record does not know.
		r.log().Warn("a settlement's transaction is gone but its authorization was used on chain",
			"payment", p.ID, "tx", p.TxHash, "status", p.Status)
		return false, nil
	}
	return r.vanish(ctx, p, ReasonTransactionVanished)
}

// vanish marks p vanished and says so loudly, once.
func (r *Reconciler) vanish(ctx context.Context, p store.Payment, reason string) (bool, error) {
	if p.Status == store.StatusVanished {
		return false, nil
	}
	if err := r.Ledger.MarkVanished(ctx, p.ID, reason); err != nil {
		return false, err
	}
	r.log().Error("a settled payment's transaction is no longer on chain: the request was served, the transfer did not happen",
		"payment", p.ID, "tx", p.TxHash, "payer", p.Payer, "amount", p.Amount.String(), "asset", p.Asset,
		"pay_to", p.PayTo, "resource", p.Resource, "settled_at", p.UpdatedAt, "reason", reason)
	return true, nil
}
