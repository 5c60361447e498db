package exactmethod

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// ReconcileLedger is the part of the store the reconciler needs.
type ReconcileLedger interface {
	UnfinishedPayments(ctx context.Context) ([]store.Payment, error)
	MarkSettled(ctx context.Context, id int64, txHash string) error
	MarkFailed(ctx context.Context, id int64, reason string) error
	ReleasePayment(ctx context.Context, id int64, reason string) error
	RecentSettlements(ctx context.Context, since time.Time, beforeID int64, limit int) ([]store.Payment, error)
	MarkVanished(ctx context.Context, id int64, reason string) error
}

// Reconciler finishes payments that a crash, an RPC outage or a slow chain left unfinished, and
// notices settlements that left the chain (RecheckOnce).
//
// A reserved payment was never broadcast (the hash is recorded before broadcast), and the request
// it paid for was never answered, so it is released; a queued one (async, its request answered)
// is the Queue's, which sends it. A submitted payment is looked up by its
// transaction: mined means settled (or failed on status 0); not found after its authorization
// expired, and with the nonce still unused, means it can never land, so it failed.
type Reconciler struct {
	Ledger ReconcileLedger
	Chain  ReconcileChain
	// MinAge skips payments younger than this (since their last change), which a live request
	// may still be working on, or a lagging node may not know yet (default 2 minutes).
	MinAge time.Duration
	// RecheckWindow is how long after it settled (or vanished) a payment is checked against the
	// chain again (default DefaultRecheckWindow).
	RecheckWindow time.Duration
	// RecheckBatch caps the settlements checked per round (default DefaultRecheckBatch).
	RecheckBatch int
	Now          func() time.Time
	Logger       *slog.Logger

	recheckMu     sync.Mutex
	recheckCursor int64 // where the next re-check page starts; guarded by recheckMu
}

// RunOnce reconciles every unfinished payment once and reports how many it finished.
func (r *Reconciler) RunOnce(ctx context.Context) (int, error) {
	pending, err := r.Ledger.UnfinishedPayments(ctx)
	if err != nil {
		return 0, err
	}
	now, minAge := r.now(), r.minAge()
	done := 0
	for _, p := range pending {
		if now.Sub(p.UpdatedAt) < minAge {
			continue
		}
		finished, err := r.reconcile(ctx, p, now)
		if err != nil {
			r.log().Warn("reconciling a payment failed", "payment", p.ID, "err", err)
			continue
		}
		if finished {
			done++
		}
	}
	return done, nil
}

// Run reconciles and re-checks a page of settlements every interval until ctx ends, starting one
// interval from now (run RunOnce and RecheckOnce first for a pass at start-up).
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if n, err := r.RunOnce(ctx); err != nil {
			r.log().Warn("reconciliation round failed", "err", err)
		} else if n > 0 {
			r.log().Info("reconciled unfinished payments", "count", n)
		}
		if _, err := r.RecheckOnce(ctx); err != nil {
			r.log().Warn("settlement re-check round failed", "err", err)
		}
	}
}

func (r *Reconciler) reconcile(ctx context.Context, p store.Payment, now time.Time) (bool, error) {
	if p.Status == store.StatusReserved {
		if p.Queued {
			return false, nil
		}
		return true, r.Ledger.ReleasePayment(ctx, p.ID, "recovered_unsent")
	}
	hash := common.HexToHash(p.TxHash)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	receipt, err := r.Chain.WaitMined(wctx, hash)
	cancel()
	switch {
	case err == nil && exact.AuthorizationUsed(receipt, common.HexToAddress(p.Asset), common.HexToAddress(p.Payer), common.HexToHash(p.Nonce)):
		return true, r.Ledger.MarkSettled(ctx, p.ID, receipt.TxHash.Hex())
	case err == nil:
		// Mined, but the payment's own transfer is not in it: it failed inside a batch.
		return true, r.Ledger.MarkFailed(ctx, p.ID, string(x402.ReasonExactTransactionFailed))
	case errors.Is(err, txn.ErrFailed):
		return true, r.Ledger.MarkFailed(ctx, p.ID, string(x402.ReasonExactTransactionFailed))
	}
	if now.Before(p.ValidBefore) {
		if p.Queued {
			return r.requeueLost(ctx, p)
		}
		return false, nil // may still be mined
	}
	used, err := r.Chain.AuthorizationState(ctx, common.HexToAddress(p.Asset), common.HexToAddress(p.Payer), common.HexToHash(p.Nonce))
	if err != nil {
		return false, err
	}
	if used {
		// Spent by a transaction we cannot see (a replacement, or a third party relaying the same
		// authorization). Leave it for an operator rather than guess.
		r.log().Warn("authorization used on chain by an unknown transaction", "payment", p.ID, "tx", p.TxHash)
		return false, nil
	}
	return true, r.Ledger.MarkFailed(ctx, p.ID, string(x402.ReasonExactValidBefore))
}

func (r *Reconciler) minAge() time.Duration {
	if r.MinAge == 0 {
		return 2 * time.Minute
	}
	return r.MinAge
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// requeueLost puts back in the queue an async payment (served, owed) whose transaction no node
// knows, neither mined nor pending, while its authorization is unused: a crash between the
// write-ahead record and the broadcast, or a node that dropped it. Sending the authorization
// again moves the money at most once (the token refuses a used nonce): should the lost
// transaction turn up after all, one of the two reverts, and the sender that finds the nonce
// used looks the earlier transaction up before it records anything.
func (r *Reconciler) requeueLost(ctx context.Context, p store.Payment) (bool, error) {
	q, ok := r.Ledger.(Requeuer)
	if !ok {
		return false, nil
	}
	st, err := r.Chain.LookupTx(ctx, common.HexToHash(p.TxHash))
	if err != nil || st.Pending || st.Receipt != nil {
		return false, err
	}
	used, err := r.Chain.AuthorizationState(ctx, common.HexToAddress(p.Asset), common.HexToAddress(p.Payer), common.HexToHash(p.Nonce))
	if err != nil || used {
		return false, err
	}
	r.log().Warn("an async payment's transaction is known nowhere; queued again", "payment", p.ID, "tx", p.TxHash)
	return true, q.RequeuePayment(ctx, p.ID, p.TxHash)
}
