package exactmethod

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// Requeuer is the part of the store that puts a payment back in the queue.
type Requeuer interface {
	RequeuePayment(ctx context.Context, id int64, txHash string) error
}

// SettleQueued implements QueueSettler: each payment of the batch is settled with a
// transaction of its own, all at once. A payment whose transfer certainly did not go out for a
// reason of the gateway's own stays in (or goes back to) the queue, and the batch reports that
// reason.
func (e *Method) SettleQueued(ctx context.Context, batch []store.Payment) error {
	errs := make([]error, len(batch))
	arrivals := make([]func(), len(batch))
	if e.Batcher != nil {
		// Announced together, so that the batch waits for all of them.
		for i := range batch {
			arrivals[i] = e.Batcher.Expect()
		}
	}
	var wg sync.WaitGroup
	for i, p := range batch {
		wg.Go(func() { errs[i] = e.settleQueued(ctx, p, arrivals[i]) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// settleQueued settles one queued payment and reports only a failure the queue should wait on.
func (e *Method) settleQueued(ctx context.Context, p store.Payment, arrived func()) error {
	if arrived != nil {
		defer arrived()
	}
	pl, err := exact.ParsePayload(json.RawMessage(p.Payload))
	if err != nil {
		e.log().Error("a queued payment's payload cannot be read; failed", "payment", p.ID, "err", err)
		if err := e.Ledger.MarkFailed(ctx, p.ID, string(x402.ReasonExactFailedToParseSignature)); err != nil {
			e.log().Error("recording a failed queued payment failed", "payment", p.ID, "err", err)
		}
		return nil
	}
	c := &charge{e: e, id: p.ID, network: p.Network, queued: true, arrived: arrived,
		v: &exact.Verified{Payer: pl.Authorization.From, Token: common.HexToAddress(p.Asset), Payload: *pl}}
	if p.TxHash != "" {
		c.prior = common.HexToHash(p.TxHash)
	}
	s, unsent, err := c.settle(ctx)
	switch {
	case err == nil:
		e.log().Debug("queued payment settled", "payment", p.ID, "tx", s.Transaction)
		return nil
	case errors.Is(err, errSentElsewhere):
		return nil
	case !c.requeueable(err):
		// Failed (recorded, the payer blocked) or pending (submitted, the reconciler's).
		e.log().Warn("queued payment not settled", "payment", p.ID, "payer", p.Payer, "err", err)
		return nil
	}
	if unsent != (common.Hash{}) {
		r, ok := e.Ledger.(Requeuer)
		if !ok {
			return err
		}
		if rerr := r.RequeuePayment(context.WithoutCancel(ctx), p.ID, unsent.Hex()); rerr != nil {
			e.log().Error("putting an unsent payment back in the queue failed; the reconciler fails it once it expires",
				"payment", p.ID, "err", rerr)
		}
	}
	return err
}

var _ settle.QueueSettler = (*Method)(nil)
