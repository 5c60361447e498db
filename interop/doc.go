// Package interop holds no code of its own: its tests run Payper against the stock x402 npm
// packages (@x402/fetch, @x402/express, @x402/core, @x402/evm), in both directions, on the
// embedded dev chain. pay.mjs is a stock paying client; server.mjs is a stock seller with an
// in-process facilitator; diffverify.mjs runs payments through the reference's verification, for
// the differential test that compares it with Payper's. They need `npm ci` in this directory first.
package interop
