package exactmethod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// An exact payment on a FlowAsync route is verified, reserved with its signed payload against
// the bounds on unsettled value, served at once, and queued when its answer begins; the Queue
// sends it later, from any replica, after any restart. A payment the bounds do not allow (its
// payer over its bound or blocked, everybody over the total) or whose authorization expires too
// soon to wait in a queue is settled synchronously instead, as in FlowAuto: the bounds stop
// credit, never a good payment.

// AsyncLedger is the part of the store deferring a payment needs.
type AsyncLedger interface {
	ReserveAsyncPayment(ctx context.Context, p *store.Payment, l store.AsyncLimits) (int64, error)
	QueuePayment(ctx context.Context, id int64) error
}

// Async configures the deferral of exact payments.
type Async struct {
	Ledger AsyncLedger
	Limits store.AsyncLimits
	// MinWindow is how long an authorization must still be valid to be deferred: room for the
	// queue and the inclusion margin (default the inclusion margin + DefaultQueueRoom).
	MinWindow time.Duration
	// Queued, when set, is told that a payment was queued (it wakes the Queue).
	Queued func()
}

// DefaultQueueRoom is how long, beyond the inclusion margin, an authorization must still be
// valid to wait in the queue by default.
const DefaultQueueRoom = 20 * time.Second

// reserveAsync reserves a FlowAsync payment against the bounds and returns its deferrable
// charge (deferred true). It reports deferred false, with no error, when the payment is to be
// settled synchronously instead.
func (e *Method) reserveAsync(ctx context.Context, v *exact.Verified, rec *store.Payment) (paywall.Charge, bool, error) {
	q := e.Async
	if q == nil {
		return nil, false, nil
	}
	window := q.MinWindow
	if window <= 0 {
		window = e.InclusionMargin + DefaultQueueRoom
	}
	vb := v.Payload.Authorization.ValidBefore
	if vb.IsInt64() && e.now().Add(window).Unix() >= vb.Int64() {
		return nil, false, nil
	}
	payload, err := json.Marshal(v.Payload)
	if err != nil {
		return nil, false, fmt.Errorf("encode payload: %w", err)
	}
	rec.Payload = string(payload)
	id, err := q.Ledger.ReserveAsyncPayment(ctx, rec, q.Limits)
	switch {
	case errors.Is(err, store.ErrLimit), errors.Is(err, store.ErrBlocked):
		e.log().Debug("async payment settled synchronously", "payer", rec.Payer, "why", err)
		rec.Payload = ""
		return nil, false, nil
	case errors.Is(err, store.ErrDuplicate):
		return nil, false, x402.Failf(x402.ReasonExactNonceAlreadyUsed, "authorization nonce %s is already used by another request", rec.Nonce)
	case err != nil:
		return nil, false, fmt.Errorf("%w: reserve async payment: %w", paywall.ErrUnavailable, err)
	}
	failpoint.Hit(failpoint.ExactReserved)
	return &deferredCharge{charge{e: e, id: id, v: v, network: rec.Network}}, true, nil
}

// deferredCharge is an async reservation: Defer queues it, Cancel releases it, and Complete, if
// a caller wants it settled now after all, settles it as any exact charge.
type deferredCharge struct{ charge }

// Defer implements paywall.Deferrable: the payment is queued, durably, before its answer is
// released.
func (c *deferredCharge) Defer(ctx context.Context) (*x402.SettlementResponse, error) {
	if err := c.e.Async.Ledger.QueuePayment(ctx, c.id); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Released meanwhile (its request outlived the reconciler's patience): nothing is
			// owed, so nothing may be served.
			return nil, x402.Failf(x402.ReasonUnexpectedSettleError, "the payment's reservation lapsed; nothing was charged")
		}
		return nil, fmt.Errorf("%w: queue payment: %w", paywall.ErrUnavailable, err)
	}
	failpoint.Hit(failpoint.AsyncQueued)
	if q := c.e.Async.Queued; q != nil {
		q()
	}
	a := c.v.Payload.Authorization
	return &x402.SettlementResponse{
		Success: true, Payer: c.Payer(), Network: c.network, Amount: a.Value.String(),
		Extra: map[string]any{paywall.ExtraSettlement: paywall.SettlementQueued},
	}, nil
}

func (e *Method) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

var _ paywall.Deferrable = (*deferredCharge)(nil)
