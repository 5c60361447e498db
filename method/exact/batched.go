package exactmethod

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/settle"
	"github.com/payper/payper/settle/txn"
	"github.com/payper/payper/x402"
)

// settleBatched settles the payment through the batcher: with the other payments completing at
// the same time, in one transaction. Its own outcome is read from the receipt's logs, so a
// payment that failed inside a mined batch is a failure, however the batch went. Like settle, it
// also returns the hash last recorded for a transfer that certainly did not go out.
func (c *charge) settleBatched(ctx context.Context, data []byte, recorded *atomic.Value) (*x402.SettlementResponse, common.Hash, error) {
	a := c.v.Payload.Authorization
	c.arrive()
	o := c.e.Batcher.Settle(ctx, settle.Transfer{
		Token: c.v.Token, Authorizer: a.From, Nonce: a.Nonce, Data: data,
		OnSigned: c.recordSigned(ctx, recorded),
		OnSent:   func() { failpoint.Hit(failpoint.ExactBroadcast) },
	})
	unsent := common.Hash{}
	if h, ok := recorded.Load().(common.Hash); ok && o.Tx == (common.Hash{}) && errors.Is(o.Err, txn.ErrNotSent) {
		unsent = h
	}
	switch {
	case o.Receipt != nil && o.Used:
		return c.settled(ctx, o.Receipt), common.Hash{}, nil
	case o.Receipt != nil:
		// Mined, but this transfer did not happen (its call failed inside the batch, or the
		// transaction reverted): nothing moved for it.
		reason := c.diagnose(ctx, &txn.RevertError{Err: errors.New("the transfer failed in its settlement transaction")})
		if reason == x402.ReasonExactTransactionSimFailed {
			reason = x402.ReasonExactTransactionFailed
		}
		c.fail(ctx, reason)
		return nil, common.Hash{}, x402.Failf(reason, "the payment's transfer failed in settlement transaction %s", o.Tx.Hex())
	case o.Tx != (common.Hash{}):
		// Sent and not mined yet (or its broadcast had no usable answer): the record stays
		// submitted and the reconciler finishes it. The response is withheld.
		return nil, common.Hash{}, x402.Fail(x402.ReasonSettlementPending, "settlement transaction "+o.Tx.Hex()+" is not mined yet", o.Err)
	case errors.Is(o.Err, errSentElsewhere):
		return nil, common.Hash{}, o.Err
	case errors.Is(o.Err, txn.ErrSettlerUnfunded):
		c.e.log().Error("a payment could not be settled: the settler cannot pay for gas", "payment", c.id, "err", o.Err)
		if c.requeueable(o.Err) {
			return nil, unsent, o.Err
		}
		c.fail(ctx, x402.ReasonUnexpectedSettleError)
		return nil, common.Hash{}, x402.Fail(x402.ReasonUnexpectedSettleError, "the gateway cannot pay for settlement gas right now; nothing was charged",
			fmt.Errorf("%w: %w", paywall.ErrUnavailable, o.Err))
	case errors.Is(o.Err, txn.ErrBroadcastUnknown), errors.Is(o.Err, context.Canceled), errors.Is(o.Err, context.DeadlineExceeded):
		return nil, common.Hash{}, x402.Fail(x402.ReasonSettlementPending, "the settlement's outcome is not known yet", o.Err)
	case c.requeueable(o.Err):
		return nil, unsent, o.Err
	default:
		reason := c.diagnose(ctx, o.Err)
		if reason == x402.ReasonExactNonceAlreadyUsed {
			// The earlier transaction of a requeued payment may be what used it.
			if s, ok := c.settledBefore(ctx); ok {
				return s, common.Hash{}, nil
			}
		}
		c.fail(ctx, reason)
		return nil, common.Hash{}, x402.Fail(reason, "the payment could not be settled", o.Err)
	}
}
