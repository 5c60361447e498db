package paywall

import (
	"context"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"strconv"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

// Flow is when a payment that settles on chain (an OnChain method's charge) is settled,
// relative to the protected handler's answer. Charges of other methods (a channel voucher,
// recorded in flight before the handler runs) are made final when the handler's status and
// headers arrive, whatever the flow, and their responses always stream.
type Flow string

// Settlement flows.
const (
	// FlowAuto is FlowAfterBody, except that a response announcing a stream (Server-Sent
	// Events, NDJSON), or a body larger than the buffer, is settled when that becomes known
	// (its headers, or the moment the buffer would overflow) and then streams.
	FlowAuto Flow = "auto"
	// FlowBefore settles before the handler runs (x402's "upfront" payment flow, declared in
	// the offer's extra.paymentFlow): the payment is taken even if the handler then fails.
	FlowBefore Flow = "before"
	// FlowAfterHeaders settles when the handler's status and headers arrive, if below 400,
	// then streams the body. A failure mid-body after that is the handler's.
	FlowAfterHeaders Flow = "after-headers"
	// FlowAfterBody buffers the whole response (up to Options.MaxResponseBytes), settles if its
	// status is below 400, then releases it: the reference's behaviour.
	FlowAfterBody Flow = "after-body"
	// FlowAsync serves at once (streaming) and settles in the background, from a durable queue:
	// the charge must implement Deferrable, and the method bounds the unsettled value. A charge
	// that does not (a payer over its bound) is settled as FlowAuto.
	FlowAsync Flow = "async"
)

// Flows lists every flow, FlowAuto first.
var Flows = []Flow{FlowAuto, FlowBefore, FlowAfterHeaders, FlowAfterBody, FlowAsync}

// ParseFlow reads a flow's name.
func ParseFlow(s string) (Flow, error) {
	for _, f := range Flows {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("%q is not a settlement flow (auto, before, after-headers, after-body or async)", s)
}

// OnChain is implemented by a Method whose Complete sends a transaction and waits for it
// (exact): when its charges complete follows the route's Flow, and its offers declare the
// upfront flow on FlowBefore routes.
type OnChain interface {
	Method
	// SettlesOnChain marks the method; it does nothing.
	SettlesOnChain()
}

// Deferrable is implemented by a charge that may be settled in the background (FlowAsync).
type Deferrable interface {
	Charge
	// Defer records, durably, that the charge's response is being served and that the charge
	// is to be settled later, and returns the PAYMENT-RESPONSE to send now (accepted, not yet
	// settled). After Defer the charge is never cancelled. Failures are as Complete's.
	Defer(ctx context.Context) (*x402.SettlementResponse, error)
}

// Extra keys and values that declare how a payment settles, in offers and settlement responses.
const (
	// ExtraPaymentFlow is x402's key for a non-default payment flow in an offer's extra.
	ExtraPaymentFlow = "paymentFlow"
	// PaymentFlowUpfront is the value that declares FlowBefore.
	PaymentFlowUpfront = "upfront"
	// ExtraSettlement, in a PAYMENT-RESPONSE's extra, says "queued" when the payment is accepted
	// and will settle in the background (FlowAsync); the transaction is then empty.
	ExtraSettlement = "settlement"
	// SettlementQueued is ExtraSettlement's value for a deferred charge.
	SettlementQueued = "queued"
)

// upfrontNote is added to the description of a FlowBefore route's 402.
const upfrontNote = "Payment is taken before the request is served and is not refunded if serving it fails."

// flowFor is the route's flow.
func (pw *Paywall) flowFor(rule pricing.Rule) Flow {
	if pw.opts.RouteFlow != nil {
		if f := pw.opts.RouteFlow(rule); f != "" {
			return f
		}
	}
	if pw.opts.Flow != "" {
		return pw.opts.Flow
	}
	return FlowAuto
}

// methodFlow is the flow a charge of method m follows on a route of flow f: its own for
// OnChain methods, at the headers for the others.
func methodFlow(m Method, f Flow) Flow {
	if _, ok := m.(OnChain); ok {
		return f
	}
	return FlowAfterHeaders
}

// upfront returns offer declaring the upfront payment flow, with a fresh Extra map.
func upfront(offer x402.PaymentRequirements) x402.PaymentRequirements {
	extra := maps.Clone(offer.Extra)
	if extra == nil {
		extra = map[string]any{}
	}
	extra[ExtraPaymentFlow] = PaymentFlowUpfront
	offer.Extra = extra
	return offer
}

// describe is the 402's description of a route.
func describe(rule pricing.Rule, flow Flow) string {
	if flow != FlowBefore {
		return rule.Description
	}
	if rule.Description == "" {
		return upfrontNote
	}
	return rule.Description + " — " + upfrontNote
}

// Media types auto settles at the headers: the caller reads them as they come.
var streamingTypes = map[string]bool{
	"text/event-stream":    true,
	"application/x-ndjson": true,
	"application/jsonl":    true,
	"application/json-seq": true,
}

// streamsAtHeaders reports whether FlowAuto settles a response at its headers: it announces a
// stream, or a body longer than limit.
func streamsAtHeaders(h http.Header, limit int64) bool {
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && streamingTypes[mt] {
		return true
	}
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	return err == nil && n > limit
}
