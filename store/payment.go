package store

import (
	"math/big"
	"time"
)

// PaymentStatus is the settlement state of an exact-scheme payment.
//
//	reserved ──► submitted ──► settled
//	   │  │          └───────► failed
//	   │  ├──────────────────► settled | failed
//	   └─────────────────────► released
//
// settled, failed and released are terminal.
type PaymentStatus string

// Payment states.
const (
	StatusReserved  PaymentStatus = "reserved"  // verified, nonce claimed, not yet sent
	StatusSubmitted PaymentStatus = "submitted" // tx signed and broadcast (TxHash known)
	StatusSettled   PaymentStatus = "settled"   // receipt status 1
	StatusFailed    PaymentStatus = "failed"    // settlement failed terminally (ErrorReason)
	StatusReleased  PaymentStatus = "released"  // reservation given back, never sent
)

// Valid reports whether s is one of the known states.
func (s PaymentStatus) Valid() bool {
	switch s {
	case StatusReserved, StatusSubmitted, StatusSettled, StatusFailed, StatusReleased:
		return true
	}
	return false
}

// Terminal reports whether no further transition leaves s.
func (s PaymentStatus) Terminal() bool {
	return s == StatusSettled || s == StatusFailed || s == StatusReleased
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
	TxHash      string // "" until submitted
	ErrorReason string // x402 reason code on failure or release
	CreatedAt   time.Time
	UpdatedAt   time.Time
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
