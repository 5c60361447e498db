package client

import (
	"errors"
	"math/big"
	"sync"
)

// ErrBudgetExceeded means paying would spend more than the budget has left.
var ErrBudgetExceeded = errors.New("client: payment would exceed the budget")

// Budget is a total spending limit shared by concurrent requests. Amounts are reserved before a
// payment is sent and given back only when the server plainly refused the payment.
type Budget struct {
	mu    sync.Mutex
	limit *big.Int
	spent *big.Int
}

// NewBudget returns a budget of limit atomic units.
func NewBudget(limit *big.Int) *Budget {
	return &Budget{limit: new(big.Int).Set(limit), spent: new(big.Int)}
}

// Reserve takes amount from the budget, or returns ErrBudgetExceeded.
func (b *Budget) Reserve(amount *big.Int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := new(big.Int).Add(b.spent, amount)
	if next.Cmp(b.limit) > 0 {
		return ErrBudgetExceeded
	}
	b.spent = next
	return nil
}

// Refund gives back a reservation whose payment the server refused.
func (b *Budget) Refund(amount *big.Int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spent.Sub(b.spent, amount)
	if b.spent.Sign() < 0 {
		b.spent.SetInt64(0)
	}
}

// Spent returns what has been reserved so far.
func (b *Budget) Spent() *big.Int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return new(big.Int).Set(b.spent)
}

// Remaining returns what is left.
func (b *Budget) Remaining() *big.Int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return new(big.Int).Sub(b.limit, b.spent)
}
