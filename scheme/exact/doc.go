// Package exact implements the x402 "exact" scheme on EVM chains with EIP-3009
// transferWithAuthorization: the payer signs an EIP-712 authorization for exactly the price, the
// server checks it locally and a settler submits it to the token contract.
//
// Client side: Signer.CreatePayload. Server side: Verifier.Verify, which accepts every payment
// the x402 reference facilitator (@x402/evm) accepts and checks in its order: offer, signature,
// recipient, time window, amount, then the nonce and the balance, read through the small
// ChainReader interface. A payer that is a contract (a smart wallet) signs through ERC-1271 when
// the reader also implements ContractSignatures. Where it is stricter or more lenient than the
// reference, and why, is listed by the differential test in interop/ (diffverify_known_test.go).
// The package hashes the EIP-712 structs directly, knows no HTTP server, no store and no RPC
// client.
package exact

// Scheme is the x402 scheme name.
const Scheme = "exact"
