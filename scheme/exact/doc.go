// Package exact implements the x402 "exact" scheme on EVM chains with EIP-3009
// transferWithAuthorization: the payer signs an EIP-712 authorization for exactly the price, the
// server checks it locally and a settler submits it to the token contract.
//
// Client side: Signer.CreatePayload. Server side: Verifier.Verify, which runs every local check
// first (offer, recipient, amount, time window, signature) and only then reads chain state through
// the small ChainReader interface. The package hashes the EIP-712 structs directly, knows no HTTP
// server, no store and no RPC client.
package exact

// Scheme is the x402 scheme name.
const Scheme = "exact"
