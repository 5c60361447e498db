package store

import (
	"context"
	"math/big"
	"time"
)

// Channel is one batch-settlement escrow channel a payer opened towards this gateway: its
// immutable configuration, what the gateway has charged against it, and a mirror of its on-chain
// state kept fresh by the chain watcher.
//
// The request path charges a channel with ChargeChannel, a compare-and-set on Charged and on
// ChainVersion: two concurrent requests, on one replica or two, can never both be served for one
// voucher, and a charge can never rest on a funds check made before the watcher's latest update.
type Channel struct {
	ID                 string // 0x-hex EIP-712 digest of the configuration, lowercase
	Network            string // CAIP-2
	Payer              string // lowercase 0x-hex, like every address here
	PayerAuthorizer    string
	Receiver           string
	ReceiverAuthorizer string
	Token              string
	WithdrawDelay      int64  // seconds
	Salt               string // 0x-hex 32 bytes

	// Charged is the cumulative amount the gateway has charged; SignedMax and Signature are the
	// payer's best voucher, which covers it. Claimed is what our claims have made final on chain.
	// InFlight is the part of Charged whose requests are still being served (the sum of the
	// channel's in-flight charges, read with the row): not final, so no claim or refund may take
	// it. Charged - InFlight is what the provider has earned.
	Charged   *big.Int
	InFlight  *big.Int
	SignedMax *big.Int
	Signature string
	Claimed   *big.Int

	// Mirror of the contract's state for this channel.
	Balance             *big.Int
	TotalClaimed        *big.Int
	PendingWithdrawal   *big.Int
	WithdrawRequestedAt int64 // Unix seconds; 0 when no withdrawal is pending
	RefundNonce         *big.Int
	// RefundHold is the part of Balance a cooperative refund in flight is sending back: no
	// voucher may spend it. Chain syncs leave it alone until the refund nonce moves (the refund
	// landed, and Balance no longer holds it); ReleaseChannelRefund drops it when the refund
	// did not happen.
	RefundHold *big.Int
	// RefundHoldUntil is when the hold lapses; the store reports RefundHold as zero after it.
	RefundHoldUntil time.Time
	// ChainVersion grows with every mirror update; SyncedBlock is the block it reflects.
	ChainVersion int64
	SyncedBlock  uint64
	SyncedAt     time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Final is the part of the charged total whose requests were answered: Charged - InFlight.
func (c *Channel) Final() *big.Int {
	if c.InFlight == nil {
		return new(big.Int).Set(c.Charged)
	}
	return new(big.Int).Sub(c.Charged, c.InFlight)
}

// ChannelCharge moves a channel's charged total from ExpectedCharged up to Charged (a charge
// that does not increase it is ErrInvalid), recording the voucher that covers it, provided
// nobody charged it and the watcher did not update it since the caller read it.
//
// With InFlight set, the increase is recorded in the same transaction as an in-flight charge:
// the request it pays for is still being served. FinishChannelCharge makes it final once the
// request is answered; ReleaseChannelCharge gives it back if the request fails.
type ChannelCharge struct {
	ID              string
	ExpectedCharged *big.Int
	ChainVersion    int64
	Charged         *big.Int
	SignedMax       *big.Int
	Signature       string
	InFlight        *InFlightCharge
}

// InFlightCharge is a charge whose request is still being served.
type InFlightCharge struct {
	// ID names it: unique within its channel, chosen by the caller (random), 1 to 64 letters,
	// digits, '-' or '_'.
	ID string
	// Amount is the part of the charge the request pays for (Charged - ExpectedCharged).
	Amount *big.Int
	// Expires is when the charge is given back if nobody finished or released it: its request
	// can no longer be answered then (the process serving it died).
	Expires time.Time
}

// ChannelRefundHold puts Amount of a channel's balance on hold for a cooperative refund, before
// the refund transaction is sent, provided the charged total and chain version are still what
// the caller read (the ChannelCharge compare-and-set) and no other refund holds funds. The chain
// version grows, so a voucher judged on the state before the hold fails its compare-and-set, and
// judged again it finds the funds held.
type ChannelRefundHold struct {
	ID              string
	ExpectedCharged *big.Int
	ChainVersion    int64
	Amount          *big.Int
	// Until is when the hold lapses if the refund never went out (a crash between the hold and
	// the transaction); a lapsed hold neither holds funds nor blocks the next one.
	Until time.Time
}

// ChannelChainState is the on-chain state the watcher mirrors.
type ChannelChainState struct {
	Balance             *big.Int
	TotalClaimed        *big.Int
	PendingWithdrawal   *big.Int
	WithdrawRequestedAt int64
	RefundNonce         *big.Int
	Block               uint64
}

// ChannelFilter selects channels for ListChannels. Zero fields do not filter.
type ChannelFilter struct {
	Network  string
	Receiver string
	Payer    string
	// Unclaimed keeps channels whose charged total is not yet claimed on chain.
	Unclaimed bool
	// ByID lists in ascending id order instead of most recently updated first, starting after
	// AfterID when it is set: a stable order for paging through every channel.
	ByID    bool
	AfterID string
	// Limit caps the result; 0 means DefaultListLimit, values above MaxListLimit are lowered.
	Limit int
}

// ChannelStore keeps escrow channels.
type ChannelStore interface {
	// CreateChannel inserts c with zero charged and claimed totals (unless c sets them) and
	// ChainVersion 1. It returns ErrDuplicate when the channel exists.
	CreateChannel(ctx context.Context, c *Channel) error
	// GetChannel returns the channel or ErrNotFound.
	GetChannel(ctx context.Context, id string) (*Channel, error)
	// ChargeChannel applies a charge atomically; ErrConflict when the channel's charged total
	// or chain version moved since the caller read them.
	ChargeChannel(ctx context.Context, c ChannelCharge) error
	// FinishChannelCharge makes an in-flight charge of channel id final: its request is
	// answered. f must be the InFlight the charge carried. It returns ErrNotFound when the charge
	// is no longer in flight (it expired and was given back), in which case the request must not
	// be served.
	FinishChannelCharge(ctx context.Context, id string, f InFlightCharge) error
	// ReleaseChannelCharge gives an in-flight charge of channel id back: its request was not
	// served. Its amount leaves the channel's charged total (whatever was charged after it
	// stays, and the total never goes below what is claimed); the voucher is kept. ErrNotFound
	// when it is no longer in flight.
	ReleaseChannelCharge(ctx context.Context, id, inFlightID string) error
	// ReleaseExpiredCharges gives back every in-flight charge whose expiry is not after now and
	// reports how many it released.
	ReleaseExpiredCharges(ctx context.Context, now time.Time) (int, error)
	// HoldChannelRefund applies a refund hold atomically; ErrConflict when the channel's
	// charged total or chain version moved since the caller read them, or funds are already held
	// by a hold that has not lapsed.
	HoldChannelRefund(ctx context.Context, h ChannelRefundHold) error
	// ReleaseChannelRefund drops a hold of amount whose refund did not happen; ErrConflict when
	// no such hold is in place (a sync already cleared it).
	ReleaseChannelRefund(ctx context.Context, id string, amount *big.Int) error
	// SyncChannel records on-chain state and bumps ChainVersion. State from a block older than
	// the one already recorded is ignored.
	SyncChannel(ctx context.Context, id string, s ChannelChainState) error
	// MarkChannelClaimed moves Claimed from `from` to `to` (compare-and-set).
	MarkChannelClaimed(ctx context.Context, id string, from, to *big.Int) error
	// ListChannels returns channels matching f, most recently updated first.
	ListChannels(ctx context.Context, f ChannelFilter) ([]Channel, error)
}
