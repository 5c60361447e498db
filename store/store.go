// Package store defines the gateway's durable records, the Store interface
// that the SQL backends implement, and the sentinel errors callers test with
// errors.Is.
//
// Replay protection lives here rather than in memory: a payment is reserved
// by an atomic insert guarded by a unique index, so two requests, two
// goroutines or two replicas carrying the same authorization can never both
// win. State changes are compare-and-set, so a stale worker cannot move a
// payment backwards.
//
// This package has no driver imports; see store/sqlite and store/postgres.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound means no record matches the id or key.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate means a live (not released) payment with the same
	// network, asset, payer and nonce already exists: the authorization is
	// being replayed or is in flight elsewhere.
	ErrDuplicate = errors.New("store: duplicate payment")
	// ErrConflict means the requested state transition is not allowed from
	// the record's current state.
	ErrConflict = errors.New("store: state conflict")
	// ErrUnavailable means the database could not be reached or could not
	// complete the operation (connection lost, locked past the retry bound,
	// disk full, store closed). Callers should answer 503 and fail closed.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrInvalid means the caller passed a record or argument the store
	// refuses (missing key fields, negative or oversized amount, empty tx
	// hash). It signals a bug in the caller, not a database problem.
	ErrInvalid = errors.New("store: invalid argument")
)

// Store is the full persistence API of the gateway. Consumers should declare
// the smaller interface they need instead of depending on all of it.
type Store interface {
	ChannelStore
	LeaseStore

	// ReservePayment inserts p with status reserved and returns its id. It
	// returns ErrDuplicate when a payment with the same network, asset,
	// payer and nonce exists that has not been released. On success it
	// sets p.ID, p.Status, p.CreatedAt and p.UpdatedAt and lowercases p's
	// hex fields, so p equals what GetPayment returns.
	ReservePayment(ctx context.Context, p *Payment) (int64, error)
	// MarkSubmitted moves a reserved payment to submitted with the hash of
	// the broadcast transaction. Repeating it with the same hash succeeds;
	// another hash on a submitted payment replaces the first (the node
	// refused that transaction, or a replacement was sent).
	MarkSubmitted(ctx context.Context, id int64, txHash string) error
	// MarkSettled moves a reserved, submitted or vanished payment to
	// settled, clearing ErrorReason. The hash may differ from the submitted
	// one (a replacement transaction). Repeating it with the same hash
	// succeeds.
	MarkSettled(ctx context.Context, id int64, txHash string) error
	// MarkVanished moves a settled payment to vanished with a reason: its
	// transaction is no longer on chain. Repeating it succeeds and keeps the
	// first reason.
	MarkVanished(ctx context.Context, id int64, reason string) error
	// MarkFailed moves a reserved or submitted payment to failed with an
	// x402 reason code.
	MarkFailed(ctx context.Context, id int64, reason string) error
	// ReleasePayment gives a reserved (never sent) payment back, which
	// frees its key for a new reservation.
	ReleasePayment(ctx context.Context, id int64, reason string) error

	// GetPayment returns the payment with the given id or ErrNotFound.
	GetPayment(ctx context.Context, id int64) (*Payment, error)
	// FindPayment returns the live (not released) payment for the key, or
	// ErrNotFound. Hex arguments are compared case-insensitively.
	FindPayment(ctx context.Context, network, asset, payer, nonce string) (*Payment, error)
	// ListPayments returns payments matching f, newest first.
	ListPayments(ctx context.Context, f PaymentFilter) ([]Payment, error)
	// UnfinishedPayments returns every reserved or submitted payment,
	// oldest first, for recovery at start-up.
	UnfinishedPayments(ctx context.Context) ([]Payment, error)
	// RecentSettlements returns settled and vanished payments last updated
	// at or after since, newest (highest id) first, at most limit of them
	// (bounded like PaymentFilter.Limit): the settlements worth checking
	// against the chain again. beforeID > 0 returns only smaller ids, for
	// paging: pass the last id of the previous page.
	RecentSettlements(ctx context.Context, since time.Time, beforeID int64, limit int) ([]Payment, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections. Later calls return ErrUnavailable;
	// closing twice is harmless.
	Close() error

	// The answers kept for x402 payment identifiers.
	IdempotencyStore

	// The async settlement flow's payments and bounds.
	AsyncStore
}
