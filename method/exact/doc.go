// Package exactmethod is the gateway side of the x402 exact scheme: a paywall.Method that turns a
// verified EIP-3009 authorization into money moved on chain, with a durable record of every step.
//
// Method verifies a payment (package scheme/exact), reserves the authorization's nonce in the
// store (the atomic replay guard) and returns a Charge. Completing the charge builds the
// transferWithAuthorization calldata and sends it with a write-ahead record of the transaction's
// hash, alone or through the settlement engine's Batcher, waits for the receipt and records the
// outcome. On async routes the payment is reserved against bounds on unsettled value, served at
// once and settled later from the engine's Queue (Method is its QueueSettler). Resume answers a
// caller who retries a payment whose settlement was still pending.
//
// The recovery job is Reconciler: RunOnce finishes what a crash or an outage left half done, and
// RecheckOnce notices settlements that left the chain; Run does both every interval. The chain is
// reached only through the small Chain and ReconcileChain interfaces declared here.
package exactmethod
