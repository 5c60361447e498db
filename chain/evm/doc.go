// Package evm is Payper's adapter to an EVM chain over JSON-RPC, and the only package that imports
// go-ethereum's RPC client. It checks every endpoint's chain id at dial time, reads token state
// for payment verification (and asks smart-wallet payers about their signatures, ERC-1271), and
// sends transactions from one settler key. The settler account's nonces, fees and gas balance
// are kept by the settlement engine (settle/account.Sender), for which the Client is the node
// (account.Node); send and wait failures are the engine's outcome values (settle/txn), so that
// the engine and the payment methods classify them without knowing this package, and the Client
// satisfies their small chain interfaces as it is.
//
// It survives a flaky chain: several endpoints, each behind a circuit breaker, with reads failing
// over and retried with backoff (sends never are: their outcome is followed instead, a broadcast
// going to every endpoint until one answers for certain); while a settler transaction is waited
// for, the engine's sender is asked to repair the account, so that a lost transaction is
// broadcast again, a nonce gap filled, a nonce that ran ahead of a rewound chain moved back, and
// a slow one replaced with higher fees up to a ceiling.
//
// Waiting for receipts wastes no time and few calls: one head follower per client (heads.go)
// subscribes to new heads over a WebSocket endpoint, or polls the head paced by the chain's block
// time, just before each block is due (pace.go); every waiter looks at its receipt when a new
// head arrives, and not on a timer of its own. Verification reads a payment's nonce state and
// the payer's balance in one call (state.go).
package evm
