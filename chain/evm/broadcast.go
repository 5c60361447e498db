package evm

import (
	"errors"
	"strings"

	"github.com/ethereum/go-ethereum/rpc"
)

// broadcastOutcome is what an eth_sendRawTransaction answer says about the transaction.
type broadcastOutcome int

const (
	// broadcastUnknown: the transaction may be in a pool. Transport failures, timeouts and
	// JSON-RPC errors with messages we do not recognise (internal error, rate limit, an
	// endpoint's own wording) land here, so the recorded hash is waited on, never written off.
	broadcastUnknown broadcastOutcome = iota
	// broadcastSent: the node holds the transaction.
	broadcastSent
	// broadcastRefused: the node validated the transaction and rejected it.
	broadcastRefused
)

// isHeldAnswer reports an error message saying the node already holds the transaction: it is
// sent. "already known" is go-ethereum's txpool.ErrAlreadyKnown; older nodes began with "known
// transaction" (a prefix only, as "unknown transaction type" contains the same words).
func isHeldAnswer(msg string) bool {
	return strings.Contains(msg, "already known") || strings.HasPrefix(msg, "known transaction")
}

// refusalMarkers are error messages go-ethereum (and nodes that copy its wording, such as
// op-geth and reth) gives only when it rejects a transaction without adding it to its pool.
// Matched case-insensitively as substrings, since nodes append details ("nonce too low: next
// nonce 5, tx nonce 4"). "execution reverted" is absent on purpose: a node does not simulate a
// raw transaction, so an endpoint answering that way is doing something we cannot vouch for.
var refusalMarkers = []string{
	// core/error.go
	"nonce too low",
	"nonce too high",
	"nonce has max value",
	"insufficient funds", // for gas * price + value; for transfer
	"intrinsic gas too low",
	"insufficient gas for floor data gas cost",
	"gas limit reached",
	"transaction gas limit too high",
	"max priority fee per gas higher than max fee per gas",
	"max fee per gas less than block base fee",
	"transaction type not supported",
	"sender not an eoa",
	// core/txpool/errors.go and legacypool
	"invalid sender",
	"transaction underpriced", // also "replacement transaction underpriced"
	"transaction gas price below minimum",
	"exceeds block gas limit",
	"oversized data",
	"negative value",
	"account limit exceeded",
	"address already reserved",
	"txpool is full",
	"future transaction tries to replace pending",
	// internal/ethapi: checks before the pool
	"only replay-protected",
	"exceeds the configured cap",
}

// classifyBroadcast reads the error eth_sendRawTransaction returned. Only a JSON-RPC error
// object can be a refusal or a "held" answer: anything else means the answer was lost on the way
// and says nothing about whether the node got the transaction.
func classifyBroadcast(err error) broadcastOutcome {
	if err == nil {
		return broadcastSent
	}
	var answer rpc.Error
	if !errors.As(err, &answer) {
		return broadcastUnknown
	}
	msg := strings.ToLower(answer.Error())
	if isHeldAnswer(msg) {
		return broadcastSent
	}
	for _, m := range refusalMarkers {
		if strings.Contains(msg, m) {
			return broadcastRefused
		}
	}
	return broadcastUnknown
}
