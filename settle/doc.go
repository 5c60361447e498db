// Package settle turns verified x402 payments into money moved on chain and keeps a durable
// record of every step. Exact implements paywall.Method for the exact scheme: verify, reserve the
// authorization in the store (the atomic replay guard), and after the protected handler answered,
// submit transferWithAuthorization with a write-ahead record of its hash, wait for the receipt and
// record the outcome. Reconciler finishes what a crash or an outage left half done.
package settle
