package paywall

import (
	"context"
	"errors"
	"math/big"

	"github.com/payper/payper/x402"
)

// ErrUnavailable marks a failure of infrastructure the payment depends on (chain RPC, store): the
// payment may be fine, so the caller gets 503 and may retry with the same payment.
var ErrUnavailable = errors.New("payment infrastructure unavailable")

// Method is one payment scheme offered in the 402 challenge.
type Method interface {
	// Requirements returns the offer for a price in atomic units. It must depend on the price
	// alone: the paywall builds each price's offers once and reuses them, Extra map included,
	// which nobody may write to afterwards.
	Requirements(price *big.Int) x402.PaymentRequirements
	// Authorize verifies a payment for req (the server's own requirement that the payer's
	// accepted offer matched) and reserves it, so that no concurrent or later request can use it
	// again. Nothing is charged yet. Payment problems are *x402.Error values; infrastructure
	// failures wrap ErrUnavailable.
	Authorize(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload, info RequestInfo) (Charge, error)
}

// RequestInfo describes the paid request, for the payment record.
type RequestInfo struct {
	Method   string
	Route    string // the pricing rule's path pattern
	Resource string // the request URL
	// Flow is when the charge will be made (see Flow); an OnChain method reserves a FlowAsync
	// payment against its bounds, and returns a Deferrable charge when they allow it.
	Flow Flow
}

// Charge is an authorized, reserved payment.
type Charge interface {
	// Payer is the verified payer's address.
	Payer() string
	// Complete charges the payment; it runs only after the protected handler answered below 400.
	// A failure returns the settlement response to send (success false) and an error.
	Complete(ctx context.Context) (*x402.SettlementResponse, error)
	// Cancel gives the reservation back without charging: the handler failed or the response
	// could not be delivered.
	Cancel(ctx context.Context, reason string)
}

// Standalone is implemented by a Charge that pays for nothing the protected handler serves but
// is an operation of its own, such as a batch-settlement refund. The handler does not run, so
// the request reaches no upstream: Complete runs at once, and on success the client gets 200,
// the settlement header and Body.
type Standalone interface {
	Charge
	// Body is the JSON answer sent after Complete succeeded.
	Body() []byte
}

// Corrector is implemented by Authorize errors that come with a corrected offer: the method's
// requirement enriched with what the payer must know to pay again (a batch-settlement channel's
// charged total and last voucher). The paywall puts it in the fresh 402 in place of the plain one.
type Corrector interface {
	Correct(offer x402.PaymentRequirements) x402.PaymentRequirements
}
