package client

import (
	"context"
	"net/http"

	"github.com/payper/payper/x402"
)

// Preferrer is an optional Payer capability. The transport asks it about each offer of its
// scheme: true puts the offer ahead of the server's order (a payer with an open escrow channel
// wants it used), false leaves the server's order, and an error means this payer cannot pay the
// offer at all, so another payer or offer is tried.
type Preferrer interface {
	Prefer(req x402.PaymentRequirements) (bool, error)
}

// Settler is an optional Payer capability for schemes that keep state between payments, such as
// escrow channels. For every payload the payer created, the transport calls Settled exactly once
// with the server's answer, or with the transport error when no answer came (resp is then nil).
// A payload that never left the process (the request could not be built) is reported with an
// error to that effect, so the payer can give back what it reserved for it. The response body
// must not be read.
//
// When the answer is a 402 and Settled returns true (the payer learned something from it, e.g. a
// corrective 402 carrying the server's charged total), the transport asks the payer for one new
// payload for the same offer and sends the request once more. That second attempt is never
// retried, and the request still counts as one payment towards Budget.
type Settler interface {
	Settled(ctx context.Context, sent *x402.PaymentPayload, resp *http.Response, err error) (retry bool)
}
