// Package client is Payper's Go SDK for callers: an http.RoundTripper that answers an x402 402 by
// choosing a requirement it can pay, signing a payment and retrying the request once.
//
// Spending is bounded by a per-request maximum and a total Budget, both in atomic units. The
// transport never pays twice for one request: it retries at most once, and never when the request
// already carries a payment. Schemes plug in through the Payer interface declared here (the exact
// scheme's exact.Signer is one); the package knows no store, proxy or RPC client.
package client
