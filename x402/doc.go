// Package x402 holds the x402 protocol's version 2 wire types, the base64-JSON header codecs and
// the protocol's failure reasons.
//
// It imports only the standard library: it knows no HTTP server, no chain and no store, so every
// other package (gateway, client SDK, facilitator) can share it. Decoders here face untrusted
// input: they enforce size caps, reject duplicate or case-colliding JSON keys and never panic.
package x402
