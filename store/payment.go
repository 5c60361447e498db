package store

import (
	"math/big"
	"time"
)

// PaymentStatus is the settlement state of an exact-scheme payment.
//
//	reserved ──► submitted ──► settled ◄──► vanished
//	   │  │          └───────► failed
//	   │  ├──────────────────► settled | failed
//	   └─────────────────────► released
//
// failed and released are terminal. settled and vanished change only when the chain does: a
// settlement whose transaction left the chain vanishes, and settles again if it comes back.
type PaymentStatus string

// Payment states.
const (
	StatusReserved  PaymentStatus = "reserved"  // verified, nonce claimed, not yet sent
	StatusSubmitted PaymentStatus = "submitted" // tx signed and broadcast (TxHash known)
	StatusSettled   PaymentStatus = "settled"   // receipt status 1
	StatusFailed    PaymentStatus = "failed"    // settlement failed terminally (ErrorReason)
	StatusReleased  PaymentStatus = "released"  // reservation given back, never sent
	// StatusVanished: settled, then the transaction left the chain (a reorg deeper than the
	// confirmations, or a reset chain) and the authorization was not used otherwise. The request
	// was served; the transfer did not happen (ErrorReason says why).
	StatusVanished PaymentStatus = "vanished"
)

// Valid reports whether s is one of the known states.
func (s PaymentStatus) Valid() bool {
	switch s {
	case StatusReserved, StatusSubmitted, StatusSettled, StatusFailed, StatusReleased, StatusVanished:
		return true
	}
	return false
}

// Terminal reports whether s is final as far as the gateway's own work goes: nothing more is
// sent for it. Only the chain can still move a settled payment to vanished and back.
func (s PaymentStatus) Terminal() bool {
	return s == StatusSettled || s == StatusFailed || s == StatusReleased || s == StatusVanished
}

// Payment is one exact-scheme authorization the gateway accepted for a
// request, and how its settlement went.
type Payment struct {
	ID          int64
	Scheme      string    // "exact"
	Network     string    // CAIP-2, e.g. "eip155:1337"
	Asset       string    // token address, lowercase 0x-hex
	Payer       string    // lowercase 0x-hex
	PayTo       string    // lowercase 0x-hex
	Amount      *big.Int  // atomic units, 0 ≤ Amount < 2^256
	Nonce       string    // 0x-hex 32 bytes, lowercase
	ValidBefore time.Time // stored in UTC with microsecond precision
	Method      string    // HTTP method of the paid request
	Route       string    // route pattern that priced it
	Resource    string    // request URL
	Status      PaymentStatus
	TxHash      string // "" until submitted; a requeued async payment keeps the hash it was last submitted with
	ErrorReason string // x402 reason code on failure or release
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Async marks a payment of the async settlement flow (see AsyncStore); Queued, that its
	// request was answered and the worker settles it; Payload is its signed scheme payload (JSON),
	// kept for async payments only.
	Async   bool
	Queued  bool
	Payload string
}

// PaymentFilter selects payments for ListPayments. Zero fields do not
// filter.
type PaymentFilter struct {
	Network string
	Payer   string // compared case-insensitively
	PayTo   string // compared case-insensitively
	Status  PaymentStatus
	// BeforeID returns only payments with a smaller id, for paging: pass
	// the last id of the previous page.
	BeforeID int64
	// Limit caps the result; 0 means DefaultListLimit and values above
	// MaxListLimit are lowered to it.
	Limit int
}

// Bounds for PaymentFilter.Limit.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)
