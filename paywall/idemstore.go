package paywall

import (
	"context"
	"errors"
	"time"

	"github.com/payper/payper/x402"
)

// Idempotency configures the x402 payment-identifier extension: a caller that sends the same
// payment again with the same identifier gets the first answer back instead of being charged
// again, from any replica sharing the store.
type Idempotency struct {
	// Store keeps the answers. Nil turns the extension off: it is not advertised and
	// identifiers are ignored.
	Store ResponseStore
	// Required makes every payment carry an identifier (400 without one), and says so in the
	// 402's declaration.
	Required bool
	// TTL is how long an answer is kept (default 24 h).
	TTL time.Duration
	// MaxResponseBytes caps a kept body (default 1 MiB). A larger response is served but only
	// its status and headers are kept: a retry gets 409 response_not_kept, with the payment's
	// PAYMENT-RESPONSE.
	MaxResponseBytes int64
	// Lease is how long the first request may take before a retry of the same payment takes
	// its identifier over, as if that request had died (default ChargeTimeout + 5 min).
	Lease time.Duration
	// Wait is how long a retry that finds the first request still running waits for its
	// answer before it gets 409 payment_in_progress with Retry-After (default 2 s).
	Wait time.Duration
}

// KeptState is where the request holding a payment identifier stands.
type KeptState string

// States of a kept response.
const (
	// KeptInFlight: the first request is running; nothing is kept yet.
	KeptInFlight KeptState = "in_flight"
	// KeptCharging: the response is kept and its charge, named by ChargeRef, may still be
	// settling.
	KeptCharging KeptState = "kept"
	// KeptComplete: the response was charged for and is final.
	KeptComplete KeptState = "complete"
)

// KeptResponse is the record the store holds for one payment identifier.
type KeptResponse struct {
	ID          string // the payment identifier
	Fingerprint string // digest of the payment and the request line it was first used with
	Owner       string // token of the request holding the record
	State       KeptState
	ChargeRef   string // Resumable.Ref of the charge, once kept
	Status      int
	Header      []byte // JSON object of header lists
	Body        []byte
	BodyOmitted bool
	// Leased reports that the holder's lease has not run out: it may still be working.
	Leased bool
}

// PaymentIDClaim asks the store for a payment identifier.
type PaymentIDClaim struct {
	ID, Fingerprint, Owner string
	Lease, TTL             time.Duration
	Relaxed                bool // see KeptUpdate.Relaxed
}

// KeptUpdate moves a record its owner holds from one state to another.
type KeptUpdate struct {
	ID, Owner   string
	From, To    KeptState
	ChargeRef   string
	Status      int
	Header      []byte
	Body        []byte
	BodyOmitted bool
	Lease       time.Duration // from now; 0 ends the lease
	// Relaxed lets the store acknowledge the write before it reaches the disk (it survives the
	// process dying, not an operating-system crash): a lost record costs a retry its kept
	// answer, never money. The response kept before a charge that may end pending is not
	// relaxed, since it is then the caller's only copy.
	Relaxed bool
}

// Errors a ResponseStore reports; any other error means the store is unavailable.
var (
	ErrKeptNotFound = errors.New("no kept response for this payment identifier")
	ErrKeptConflict = errors.New("the kept response is held by another request or in another state")
)

// ResponseStore keeps the answers to paid requests that carried a payment identifier. Claims
// are atomic across every process sharing the store.
type ResponseStore interface {
	// ClaimPaymentID records c in state in_flight unless the identifier is held; it returns
	// the record holding the identifier afterwards and whether that is c. An in_flight record of
	// the same fingerprint whose lease ran out is taken over; an expired record is replaced.
	ClaimPaymentID(ctx context.Context, c PaymentIDClaim) (KeptResponse, bool, error)
	// KeptResponse returns the live record of id, or ErrKeptNotFound.
	KeptResponse(ctx context.Context, id string) (KeptResponse, error)
	// UpdateKeptResponse applies u if u.Owner holds u.ID in state u.From (ErrKeptConflict
	// otherwise, ErrKeptNotFound when there is no record).
	UpdateKeptResponse(ctx context.Context, u KeptUpdate) error
	// ReleasePaymentID deletes the record of id if owner holds it.
	ReleasePaymentID(ctx context.Context, id, owner string) error
}

// Resumable is implemented by a Charge whose Complete may end before its settlement is final
// (x402 settlement_pending). Ref names the charge durably, so that a retry of the payment,
// served by any replica after any restart, can learn how it ended.
type Resumable interface {
	Charge
	Ref() string
}

// Resumer is implemented by a Method whose charges are Resumable.
type Resumer interface {
	// Resume reports how the charge named ref ended: its settlement once it succeeded; an
	// *x402.Error with reason settlement_pending (and the settlement response to send) while it
	// is not final; ErrChargeReleased when it was given back without being sent, so that the
	// payment can be used again; another *x402.Error when it failed. Infrastructure failures
	// wrap ErrUnavailable. Resume never charges anything.
	Resume(ctx context.Context, ref string) (*x402.SettlementResponse, error)
}

// ErrChargeReleased is what Resume reports for a charge given back before it was sent (the
// request that made it died, and recovery released it): nothing was taken, and the same payment
// may be authorized again.
var ErrChargeReleased = errors.New("the charge was released without being sent")
