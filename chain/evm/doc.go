// Package evm is Payper's adapter to an EVM chain over JSON-RPC, and the only package that imports
// go-ethereum's RPC client. It checks every endpoint's chain id at dial time, reads token state
// for payment verification (and asks smart-wallet payers about their signatures, ERC-1271), and
// sends transactions from one settler key with a local nonce
// allocator, signing each transaction before broadcast so its hash can be recorded first
// (write-ahead). Send and wait failures are the settlement engine's outcome values (package
// settle/txn), so that the engine and the payment methods classify them without knowing this
// package; the Client satisfies their small chain interfaces as it is.
//
// It survives a flaky chain: several endpoints, each behind a circuit breaker, with reads failing
// over and retried with backoff (sends never are: their outcome is followed instead); every
// transaction the settler signs is kept until mined, so that a lost one is broadcast again, a
// nonce gap filled, a nonce that ran ahead of a rewound chain moved back, and a slow one replaced
// with higher fees up to a ceiling; and the settler's gas balance is watched.
//
// Waiting for receipts wastes no time and few calls: one head follower per client (heads.go)
// subscribes to new heads over a WebSocket endpoint, or polls the head paced by the chain's block
// time, just before each block is due (pace.go); every waiter looks at its receipt when a new
// head arrives, and not on a timer of its own. Verification reads a payment's nonce state and
// the payer's balance in one call (state.go).
package evm
