// Package client is Payper's Go SDK for callers: an http.RoundTripper that answers an x402 402 by
// choosing a requirement it can pay, signing a payment and retrying the request once.
//
// Spending is bounded by a per-request maximum and a total Budget, both in atomic units. The
// transport never pays twice for one request: it sends one payment, and never pays a request that
// already carries one; a channel payer may resend once after a corrective 402 resynchronised its
// channel state, which charges nothing twice. Schemes plug in through the Payer interface declared
// here: exact.Signer, and ChannelPayer for batch-settlement escrow channels, whose state persists
// through a ChannelStore (package channelstore keeps it on disk). The package knows no gateway
// store, proxy or RPC client.
//
// Failures on the way are retried with exponential backoff and jitter (MaxRetries, RetryPolicy):
// connection errors and 502, 503 and 504 answers, honouring Retry-After. A paid request is always
// resent with the same signed payment, and, for servers that declare the x402 payment-identifier
// extension, with the same payment identifier, which the transport adds to every payment unless
// NoIdempotency is set: the server then answers a retry from what it kept for that payment, so a
// lost answer is recovered without a second charge.
package client
