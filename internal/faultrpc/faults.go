package faultrpc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
)

// Call is one JSON-RPC call as a fault sees it.
type Call struct {
	Method string
	Params json.RawMessage
	// Tx is the decoded transaction of an eth_sendRawTransaction call, nil otherwise (or when the
	// bytes do not decode).
	Tx *types.Transaction
}

// Fault applies an Action to the calls it matches, in the order faults were added: a call gets
// the first fault that matches it.
type Fault struct {
	// Method is the JSON-RPC method the fault applies to; "" matches every method.
	Method string
	// If, when set, must also report true. It runs under the proxy's lock, so it must not call
	// the Proxy's methods (FirstSignedAt's condition is safe).
	If func(Call) bool
	// Skip lets this many matching calls through untouched before the fault applies.
	Skip int
	// Times is how many calls the fault applies to; 0 means every call until Reset.
	Times int
	Do    Action
}

// Action is what happens to a faulted call. Build one with the functions below.
type Action struct {
	kind     actionKind
	delay    time.Duration
	status   int
	code     int
	message  string
	result   json.RawMessage
	rewrite  func(json.RawMessage) json.RawMessage
	after    *Action // forwardThen: what the caller gets instead of the node's answer
	describe string
}

type actionKind int

const (
	actDelay       actionKind = iota + 1 // transport: wait, then forward
	actStatus                            // transport: an HTTP error status, nothing forwarded
	actHangup                            // transport: the connection closes without an answer
	actForwardThen                       // the node gets the call; the caller gets after instead
	actRPCError                          // per call: a JSON-RPC error object
	actResult                            // per call: a fixed result, nothing forwarded
	actRewrite                           // per call: the node's result, rewritten
	actDrop                              // per call: a send answered as accepted, never forwarded
	actRetried                           // per call: forwarded, then again once the node moved on
)

func (a Action) String() string { return a.describe }

// forwards reports whether a per-call action lets the call reach the node.
func (a Action) forwards() bool { return a.kind == actRewrite || a.kind == actRetried }

// transport reports whether the action decides the whole HTTP exchange (a batch included).
func (a Action) transport() bool {
	return a.kind == actDelay || a.kind == actStatus || a.kind == actHangup || a.kind == actForwardThen
}

// Delay holds the request for d, then forwards it: a slow node or network.
func Delay(d time.Duration) Action {
	return Action{kind: actDelay, delay: d, describe: "delay " + d.String()}
}

// HTTPStatus answers the whole request with an HTTP error status and forwards nothing.
func HTTPStatus(code int) Action {
	return Action{kind: actStatus, status: code, describe: "HTTP " + strconv.Itoa(code)}
}

// Hangup closes the connection without an answer and forwards nothing.
func Hangup() Action { return Action{kind: actHangup, describe: "hang up"} }

// ForwardThen forwards the request to the node and then, instead of the node's answer, does
// after (Hangup, HTTPStatus or RPCError): a send whose answer was lost.
func ForwardThen(after Action) Action {
	return Action{kind: actForwardThen, after: &after, describe: "forward, then " + after.describe}
}

// RPCError answers the call with a JSON-RPC error object and forwards nothing.
func RPCError(code int, message string) Action {
	return Action{kind: actRPCError, code: code, message: message, describe: fmt.Sprintf("error %d %q", code, message)}
}

// Result answers the call with a fixed result (nil answers null) and forwards nothing.
func Result(v any) Action {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("faultrpc: result %v: %v", v, err))
	}
	return Action{kind: actResult, result: raw, describe: "result " + string(raw)}
}

// Rewrite forwards the call and passes the node's result through fn. Error answers pass
// unchanged.
func Rewrite(fn func(result json.RawMessage) json.RawMessage) Action {
	return Action{kind: actRewrite, rewrite: fn, describe: "rewrite"}
}

// Retried forwards the call, then forwards it again until the node's answer no longer says
// "already known" (the transaction left its pool: mined), and answers with that second answer:
// an endpoint that lost the first answer and retried on its own, as hosted endpoints do.
func Retried() Action { return Action{kind: actRetried, describe: "retried by the endpoint"} }

// Drop answers an eth_sendRawTransaction as accepted, with the transaction's hash, and never
// forwards it: the node never sees the transaction.
func Drop() Action { return Action{kind: actDrop, describe: "drop"} }

// Ready-made faults for the usual cases.

// DropSends drops the next n transactions sent (0: every one).
func DropSends(n int) Fault {
	return Fault{Method: "eth_sendRawTransaction", Times: n, Do: Drop()}
}

// LoseSendAnswers forwards the next n sends to the node and answers each with a gateway timeout
// (0: every one).
func LoseSendAnswers(n int) Fault {
	return Fault{Method: "eth_sendRawTransaction", Times: n, Do: ForwardThen(HTTPStatus(504))}
}

// WrongChainID answers eth_chainId with id.
func WrongChainID(id uint64) Fault {
	return Fault{Method: "eth_chainId", Do: Result("0x" + strconv.FormatUint(id, 16))}
}

// LagBlocks answers eth_blockNumber with the node's block number less n (not below zero).
func LagBlocks(n uint64) Fault {
	return Fault{Method: "eth_blockNumber", Do: Rewrite(func(r json.RawMessage) json.RawMessage {
		var s string
		if json.Unmarshal(r, &s) != nil {
			return r
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		if err != nil {
			return r
		}
		v -= min(v, n)
		out, _ := json.Marshal("0x" + strconv.FormatUint(v, 16))
		return out
	})}
}

// NullReceipts answers the next n eth_getTransactionReceipt calls with null, as a node that has
// not seen the transaction mined yet does.
func NullReceipts(n int) Fault {
	return Fault{Method: "eth_getTransactionReceipt", Times: n, Do: Result(nil)}
}

// FirstSignedAt matches sends of the first transaction the proxy saw signed for each nonce of
// each sender, and every resend of it: replacements (other hashes at a nonce already seen) do not
// match. With Drop it makes a transaction that never lands however often it is re-broadcast,
// as one priced below what the miners take would.
func (p *Proxy) FirstSignedAt() func(Call) bool {
	return func(c Call) bool {
		if c.Tx == nil {
			return false
		}
		p.nonceMu.Lock()
		defer p.nonceMu.Unlock()
		return p.firstAtNonce[nonceKey(c.Tx)] == c.Tx.Hash()
	}
}
