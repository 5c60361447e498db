package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/payper/payper/paywall"
	"github.com/payper/payper/store"
)

// idempotency is the paywall's payment-identifier configuration.
func (g *Gateway) idempotency() paywall.Idempotency {
	c := g.cfg.Idempotency
	return paywall.Idempotency{Store: keptResponses{g.store}, Required: c.Required, TTL: c.TTL, MaxResponseBytes: c.MaxResponseBytes}
}

// keptResponses gives the paywall the store's idempotency records in the paywall's own terms.
type keptResponses struct{ s store.IdempotencyStore }

func (k keptResponses) ClaimPaymentID(ctx context.Context, c paywall.PaymentIDClaim) (paywall.KeptResponse, bool, error) {
	r, claimed, err := k.s.ClaimIdempotencyKey(ctx, store.IdempotencyClaim{
		Key: c.ID, Fingerprint: c.Fingerprint, Owner: c.Owner, Lease: c.Lease, TTL: c.TTL, Relaxed: c.Relaxed,
	})
	if err != nil {
		return paywall.KeptResponse{}, false, err
	}
	return toKept(r), claimed, nil
}

func (k keptResponses) KeptResponse(ctx context.Context, id string) (paywall.KeptResponse, error) {
	r, err := k.s.GetIdempotentResponse(ctx, id)
	if err != nil {
		return paywall.KeptResponse{}, keptError(err)
	}
	return toKept(r), nil
}

func (k keptResponses) UpdateKeptResponse(ctx context.Context, u paywall.KeptUpdate) error {
	return keptError(k.s.UpdateIdempotentResponse(ctx, store.IdempotencyUpdate{
		Key: u.ID, Owner: u.Owner, From: store.IdempotencyState(u.From), To: store.IdempotencyState(u.To),
		ChargeRef: u.ChargeRef, Status: u.Status, Header: u.Header, Body: u.Body, BodyOmitted: u.BodyOmitted, Lease: u.Lease,
		Relaxed: u.Relaxed,
	}))
}

func (k keptResponses) ReleasePaymentID(ctx context.Context, id, owner string) error {
	return k.s.ReleaseIdempotencyKey(ctx, id, owner)
}

func toKept(r *store.IdempotentResponse) paywall.KeptResponse {
	return paywall.KeptResponse{
		ID: r.Key, Fingerprint: r.Fingerprint, Owner: r.Owner, State: paywall.KeptState(r.State), ChargeRef: r.ChargeRef,
		Status: r.Status, Header: r.Header, Body: r.Body, BodyOmitted: r.BodyOmitted, Leased: r.Leased,
	}
}

// keptError maps the store's sentinels to the paywall's; anything else stays an outage.
func keptError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return errors.Join(paywall.ErrKeptNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return errors.Join(paywall.ErrKeptConflict, err)
	}
	return err
}

// The purge of expired answers: every replica runs it; deleting an expired row twice is
// harmless, and batches keep each statement short.
const (
	purgeInterval = 10 * time.Minute
	purgeBatch    = 500
)

// purgeKeptResponses deletes expired answers every interval until ctx ends.
func purgeKeptResponses(ctx context.Context, s store.IdempotencyStore, interval time.Duration, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		n, err := purgeExpired(ctx, s, purgeBatch)
		if err != nil {
			log.Warn("purging expired payment-identifier answers failed", "err", err)
		}
		if n > 0 {
			log.Info("purged expired payment-identifier answers", "count", n)
		}
	}
}

// purgeExpired deletes every expired answer, batch rows per statement, and reports how many.
func purgeExpired(ctx context.Context, s store.IdempotencyStore, batch int) (int, error) {
	total := 0
	for {
		n, err := s.PurgeIdempotentResponses(ctx, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

var _ paywall.ResponseStore = keptResponses{}
