package store

import (
	"context"
	"errors"
	"math/big"
	"time"
)

// Refusals of ReserveAsyncPayment: the payment is good, but may not be served before it is paid.
var (
	// ErrLimit means the payment would take its payer's, or everybody's, unsettled value past
	// its bound.
	ErrLimit = errors.New("store: over the bound on unsettled value")
	// ErrBlocked means an async payment of the payer failed less than AsyncLimits.BlockFor ago.
	ErrBlocked = errors.New("store: payer blocked after a failed settlement")
)

// AsyncLimits bound what async payments may serve before they are paid.
type AsyncLimits struct {
	// PerPayer bounds one payer's unsettled value, Total everybody's together.
	PerPayer, Total *big.Int
	// BlockFor is how long after an async payment of a payer failed its next ones are refused.
	BlockFor time.Duration
}

// Exposure is what async payments have served and not yet settled.
type Exposure struct {
	Unsettled *big.Int
	// BlockedAt is when an async payment of the payer last failed (zero: never).
	BlockedAt time.Time
}

// AsyncStore keeps the payments of the async settlement flow: reserved with their signed
// payload, served at once, settled later from a queue. Their value counts as unsettled, per
// payer and in total, from the reservation until the payment leaves reserved or submitted
// (MarkSettled, MarkFailed, ReleasePayment adjust it in the same transaction); a failed one
// blocks its payer.
type AsyncStore interface {
	// ReserveAsyncPayment reserves p as ReservePayment does, marked async and keeping p.Payload,
	// and adds its amount to its payer's unsettled value and to the total, in one transaction.
	// ErrLimit when either would then exceed its bound, ErrBlocked when the payer is blocked,
	// ErrDuplicate as ReservePayment; nothing is reserved then.
	ReserveAsyncPayment(ctx context.Context, p *Payment, l AsyncLimits) (int64, error)
	// QueuePayment marks a reserved async payment queued: its request is being answered and it
	// is to be settled in the background. A queued payment is never released. ErrConflict when
	// id is not a reserved async payment.
	QueuePayment(ctx context.Context, id int64) error
	// QueuedPayments returns up to limit queued payments not yet sent (still reserved) whose id
	// is above afterID, oldest first.
	QueuedPayments(ctx context.Context, afterID int64, limit int) ([]Payment, error)
	// AsyncExposure returns the exposure of payer, or of everybody for "".
	AsyncExposure(ctx context.Context, payer string) (Exposure, error)
	// MarkFirstSubmitted moves a reserved payment to submitted with the hash of the first
	// transaction sent for it, as MarkSubmitted does, but never replaces a hash: ErrConflict when
	// the payment is no longer reserved, so that of two senders of the same payment only the one
	// that recorded its transaction first broadcasts it. Repeating it with the same hash succeeds.
	MarkFirstSubmitted(ctx context.Context, id int64, txHash string) error
	// RequeuePayment puts a queued payment submitted with txHash back in the queue (submitted
	// to reserved), to be sent again: that transaction certainly never went out, or is known
	// nowhere while the authorization is still unused. The hash stays, so that a sender finding
	// the authorization used can look that transaction up first. ErrConflict when the payment is
	// not a queued async payment submitted with that hash.
	RequeuePayment(ctx context.Context, id int64, txHash string) error
}
