// Package evm is Payper's adapter to an EVM chain over JSON-RPC, and the only package that imports
// go-ethereum's RPC client. It checks the chain id at dial time, reads token state for payment
// verification, and sends transactions from one settler key with a local nonce allocator, signing
// each transaction before broadcast so its hash can be recorded first (write-ahead).
package evm
