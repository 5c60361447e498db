// Package paywall is the net/http middleware that makes a route paid: it answers unpaid requests
// with an x402 v2 402 challenge, decodes and matches the payment header, asks the payment Method
// to authorize it, runs the protected handler with its response held back, and releases the
// response only once the Method has charged the payment.
//
// With a ResponseStore it also honours the x402 payment-identifier extension: a payment sent again
// with the same identifier is answered from the store (any replica's) instead of being served or
// charged again, and a charge that ended pending is resumed by such a retry.
//
// It knows no chain, no store driver and no proxy: payment schemes plug in through the Method
// interface declared here, prices through Pricer. Usable in front of any http.Handler.
package paywall
