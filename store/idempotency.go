package store

import (
	"context"
	"time"
)

// IdempotencyState is where the request holding a payment identifier stands.
//
//	in_flight ──► kept ──► complete
//	    └─────────────────► complete
//
// A record is deleted instead when its request ends without a charge, so that a retry runs
// again.
type IdempotencyState string

// Idempotency states.
const (
	// IdempotencyInFlight: the first request with the identifier is running; nothing is kept.
	IdempotencyInFlight IdempotencyState = "in_flight"
	// IdempotencyKept: the response is kept and its charge may still be settling; the charge
	// reference tells how it ended.
	IdempotencyKept IdempotencyState = "kept"
	// IdempotencyComplete: the response was charged for and is final.
	IdempotencyComplete IdempotencyState = "complete"
)

// Valid reports whether s is one of the known states.
func (s IdempotencyState) Valid() bool {
	return s == IdempotencyInFlight || s == IdempotencyKept || s == IdempotencyComplete
}

// IdempotentResponse is what the store keeps against one x402 payment identifier: the
// fingerprint of the request that first used it, and that request's answer once there is one.
type IdempotentResponse struct {
	Key         string // the payment identifier
	Fingerprint string // digest of the payment payload and request it was first used with
	Owner       string // random token of the request that holds the record
	State       IdempotencyState
	ChargeRef   string // the payment method's reference to the charge, "" if none
	Status      int    // HTTP status of the kept response
	Header      []byte // the kept response's header, encoded by the caller
	Body        []byte
	BodyOmitted bool // the body was larger than the caller keeps: only status and header remain
	LeaseUntil  time.Time
	// Leased reports, by the store's clock, that LeaseUntil has not passed: the holder may still
	// be working on the request.
	Leased    bool
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// IdempotencyClaim asks for a payment identifier.
type IdempotencyClaim struct {
	Key, Fingerprint, Owner string
	// Lease is how long the claimer may work before a retry may take the identifier over.
	Lease time.Duration
	// TTL is how long the record is kept.
	TTL time.Duration
	// Relaxed: see IdempotencyUpdate.Relaxed.
	Relaxed bool
}

// IdempotencyUpdate changes a record its holder owns.
type IdempotencyUpdate struct {
	Key, Owner string
	// From is the state the record must be in; To the state it moves to.
	From, To    IdempotencyState
	ChargeRef   string
	Status      int
	Header      []byte
	Body        []byte
	BodyOmitted bool
	// Lease sets LeaseUntil to now + Lease; 0 ends the lease now.
	Lease time.Duration
	// Relaxed lets a backend acknowledge the write before it reaches the disk: it survives the
	// process dying, an operating-system crash may lose it (SQLite: synchronous=NORMAL in WAL
	// mode, made durable by the next flushed commit). A lost record costs a retry its kept
	// answer, never money, so the per-request claim and the final answer may take it; a
	// response kept for a charge that may end pending must not.
	Relaxed bool
}

// IdempotencyStore keeps the answers to paid requests that carried an x402 payment-identifier,
// so that a retry with the same identifier and payment is answered from the store, by any
// replica, without being charged again.
type IdempotencyStore interface {
	// ClaimIdempotencyKey inserts a record in state in_flight for c.Key, unless the key is held.
	// A record whose TTL has passed never holds its key; neither does an in_flight record with
	// the same fingerprint whose lease has passed (its request died), which is taken over. It
	// returns the record holding the key afterwards, and whether that is the new claim.
	ClaimIdempotencyKey(ctx context.Context, c IdempotencyClaim) (*IdempotentResponse, bool, error)
	// GetIdempotentResponse returns the live record for key, or ErrNotFound (also once its TTL
	// has passed).
	GetIdempotentResponse(ctx context.Context, key string) (*IdempotentResponse, error)
	// UpdateIdempotentResponse applies u when the record of u.Key is owned by u.Owner and is in
	// state u.From, and returns ErrConflict otherwise (ErrNotFound when there is no record).
	UpdateIdempotentResponse(ctx context.Context, u IdempotencyUpdate) error
	// ReleaseIdempotencyKey deletes the record of key if owner holds it; a record already gone
	// or held by another owner is left alone without error. The delete is relaxed (see
	// IdempotencyUpdate.Relaxed): a release lost to a crash leaves a record whose lease runs out.
	ReleaseIdempotencyKey(ctx context.Context, key, owner string) error
	// PurgeIdempotentResponses deletes up to limit records whose TTL has passed and reports how
	// many it deleted.
	PurgeIdempotentResponses(ctx context.Context, limit int) (int, error)
}

// Bounds on what an idempotency record holds; larger values are refused with ErrInvalid.
const (
	MaxIdempotencyKeyBytes  = 128
	MaxIdempotentBodyBytes  = 64 << 20
	MaxIdempotentHeaderSize = 1 << 20
)
