package evm

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/settle/account"
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
func classifyBroadcast(err error) account.Broadcast {
	if err == nil {
		return account.BroadcastSent
	}
	var answer rpc.Error
	if !errors.As(err, &answer) {
		return account.BroadcastUnknown
	}
	msg := strings.ToLower(answer.Error())
	if isHeldAnswer(msg) {
		return account.BroadcastSent
	}
	for _, m := range refusalMarkers {
		if strings.Contains(msg, m) {
			return account.BroadcastRefused
		}
	}
	return account.BroadcastUnknown
}

// Broadcast implements account.Node: it sends tx to the endpoint that answered last and, while the answer says nothing
// certain, to the others as well: the same signed bytes, so however many nodes get them there is
// one transaction. A refusal counts only when no endpoint before it may have taken the
// transaction, and only once no endpoint knows the transaction (see recheckRefusal). err is the
// answer behind a refused or unknown outcome. A transaction that may be in a pool nudges the
// head follower: a chain that mines on demand has its block at once.
func (c *Client) Broadcast(ctx context.Context, tx *types.Transaction) (account.Broadcast, error) {
	outcome, err := c.deliver(ctx, tx)
	if outcome == account.BroadcastSent || outcome == account.BroadcastUnknown {
		c.heads.nudge()
	}
	return outcome, err
}

// deliver is Broadcast without the nudge.
func (c *Client) deliver(ctx context.Context, tx *types.Transaction) (account.Broadcast, error) {
	start := int(c.preferred.Load())
	var firstErr error
	reached := false // an endpoint may hold the transaction
	for k := range c.eps {
		e := c.eps[(start+k)%len(c.eps)]
		if e.wrongChain.Load() {
			continue
		}
		done, err := e.br.Allow()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		cctx, cancel := c.callCtx(ctx)
		err = e.eth.SendTransaction(cctx, tx)
		cancel()
		done(judge(ctx, err) != endpointFailed)
		switch classifyBroadcast(err) {
		case account.BroadcastSent:
			return account.BroadcastSent, nil
		case account.BroadcastRefused:
			switch again := c.recheckRefusal(ctx, tx.Hash()); {
			case again == account.BroadcastSent:
				return account.BroadcastSent, nil
			case again == account.BroadcastUnknown || reached:
				return account.BroadcastUnknown, e.wrap(err)
			}
			return account.BroadcastRefused, e.wrap(err)
		}
		if firstErr == nil || !reached {
			firstErr = e.wrap(err)
		}
		if !neverConnected(err) {
			reached = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	if !reached && ctx.Err() == nil {
		return account.BroadcastNotDelivered, &unavailableError{cause: firstErr}
	}
	return account.BroadcastUnknown, firstErr
}

// neverConnected reports a send that failed before any byte reached the endpoint: the connection
// was refused, or the name did not resolve.
func neverConnected(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// recheckRefusal asks every endpoint for a transaction one of them just refused. A refusal can be
// about this very transaction: an endpoint that forwarded it, lost the answer and retried gets
// "nonce too low" once it is mined. Only when no endpoint holds it is the refusal believed.
func (c *Client) recheckRefusal(ctx context.Context, hash common.Hash) account.Broadcast {
	err := c.lookup(ctx, func(ctx context.Context, e *endpoint) error {
		_, _, err := e.eth.TransactionByHash(ctx, hash)
		return err
	})
	switch {
	case err == nil:
		return account.BroadcastSent
	case errors.Is(err, ethereum.NotFound):
		return account.BroadcastRefused
	default:
		return account.BroadcastUnknown
	}
}
