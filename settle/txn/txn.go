// Package txn is the settlement engine's vocabulary for what became of a transaction it asked a
// chain to send or looked up: never sent, broadcast with an unknown outcome, refused because the
// settler cannot pay for gas, mined and reverted, or refused before sending because it would
// revert. Chain adapters return errors that match these with errors.Is and errors.As, so that the
// engine and the payment methods classify an outcome without knowing which chain produced it.
package txn

import (
	"errors"

	"github.com/ethereum/go-ethereum/core/types"
)

// Send and wait outcomes.
var (
	// ErrNotSent means the transaction certainly did not reach the chain: it was never broadcast
	// (it would revert, fees or nonce could not be read, the settler cannot pay for gas, or the
	// caller's write-ahead hook failed), no endpoint could be connected to, or the node answered
	// with a refusal it is known to give only for transactions it rejects, such as "nonce too
	// low" or "insufficient funds", and does not hold the transaction. Nothing was spent.
	ErrNotSent = errors.New("transaction not sent")
	// ErrBroadcastUnknown means the transaction may or may not have reached a node: a transport
	// failure, a timeout, or a JSON-RPC error that is not a known refusal (a hosted endpoint may
	// forward a transaction and still answer "internal error" or "rate limited"). Its hash was
	// handed to the write-ahead hook, and its nonce stays taken. Look for its receipt.
	ErrBroadcastUnknown = errors.New("broadcast outcome unknown")
	// ErrSettlerUnfunded means the settler account cannot pay the gas of a settlement now.
	ErrSettlerUnfunded = errors.New("settler account cannot pay for gas")
	// ErrFailed means the transaction was mined with status 0.
	ErrFailed = errors.New("transaction failed on chain")
)

// RevertError is a call or gas estimate that the EVM reverted, with its reason when the contract
// gave one.
type RevertError struct {
	Reason string
	Err    error
}

func (e *RevertError) Error() string {
	if e.Reason == "" {
		return "execution reverted"
	}
	return "execution reverted: " + e.Reason
}

func (e *RevertError) Unwrap() error { return e.Err }

// Status is what a node knows of a transaction at one moment: mined (Receipt set, whatever its
// status), waiting in the pool (Pending), or neither (the zero Status).
type Status struct {
	// Receipt is set when the transaction is mined in a block at or below the node's head.
	Receipt *types.Receipt
	// Pending means the node holds the transaction in its pool, not mined.
	Pending bool
}
