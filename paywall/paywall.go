package paywall

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

// HeaderPayer carries the verified payer's address to the protected handler. Any value a client
// sends is removed first.
const HeaderPayer = "X-Payper-Payer"

// Pricer prices requests: it reads the escaped request path, refuses ambiguous spellings
// (*pricing.PathError) and unlisted paths when told to (pricing.ErrUnlisted), and returns the
// rule that prices the request with the canonical path to forward. *pricing.Table is one.
type Pricer interface {
	Route(method, rawPath string) (pricing.Route, error)
}

// Options configure a Paywall.
type Options struct {
	Pricer  Pricer
	Methods []Method // offered in this order
	// MaxHeaderBytes caps the encoded payment header (default x402.DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// MaxResponseBytes caps the part of a response held back until its payment is charged, in
	// the flows that settle after the body (default 32 MiB). FlowAfterBody refuses a larger
	// response (502, nothing charged); FlowAuto charges it when the buffer fills and streams it.
	MaxResponseBytes int64
	// Flow is when OnChain methods settle on routes RouteFlow leaves to the default (default
	// FlowAuto).
	Flow Flow
	// RouteFlow returns a route's own flow, or "" for Flow.
	RouteFlow func(rule pricing.Rule) Flow
	// Idempotency configures the x402 payment-identifier extension (off without a Store).
	Idempotency Idempotency
	// ChargeTimeout bounds Complete. Charging runs detached from the request's context so that a
	// client hanging up mid-settlement cannot leave a payment half recorded (default 60 s).
	ChargeTimeout time.Duration
	Logger        *slog.Logger

	// Gate, when set, can turn priced requests away (503) before any payment is looked at.
	Gate Gate
}

// Paywall is the middleware. Create it with New.
type Paywall struct {
	opts   Options
	log    *slog.Logger
	idem   *idempotency
	offers sync.Map // offerKey -> []x402.PaymentRequirements, one per method
}

// New returns a Paywall.
func New(opts Options) (*Paywall, error) {
	if opts.Pricer == nil {
		return nil, errors.New("paywall: a Pricer is required")
	}
	if len(opts.Methods) == 0 {
		return nil, errors.New("paywall: at least one payment Method is required")
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = x402.DefaultMaxHeaderBytes
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 32 << 20
	}
	if opts.ChargeTimeout <= 0 {
		opts.ChargeTimeout = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Paywall{opts: opts, log: log, idem: newIdempotency(opts.Idempotency, opts.ChargeTimeout, log)}, nil
}

// Wrap returns next behind the paywall.
func (pw *Paywall) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw.serve(w, r, next)
	})
}

func (pw *Paywall) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	route, ok := pw.route(w, r)
	if !ok {
		return
	}
	header, headerErr := paymentHeader(r)
	stripPaymentHeaders(r)
	rule := route.Rule
	if !route.Listed || rule.Price.Sign() == 0 {
		next.ServeHTTP(w, r)
		return
	}
	if pw.refusedByGate(w) {
		return
	}
	if headerErr != nil {
		pw.writeBadRequest(w, headerErr)
		return
	}
	w.Header().Add("Access-Control-Expose-Headers", "PAYMENT-REQUIRED, PAYMENT-RESPONSE")
	flow := pw.flowFor(rule)
	offers := pw.offersFor(rule.Price, flow == FlowBefore)
	challenge := x402.PaymentRequired{
		X402Version: x402.Version,
		Resource:    x402.ResourceInfo{URL: resourceURL(r), Description: describe(rule, flow)},
		Accepts:     offers,
		Extensions:  pw.extensions(),
	}
	if header == "" {
		challenge.Error = "PAYMENT-SIGNATURE header is required"
		pw.writeChallenge(w, challenge)
		return
	}
	payload, err := x402.DecodePaymentPayload(header, pw.opts.MaxHeaderBytes)
	if err != nil {
		pw.writeBadRequest(w, err)
		return
	}
	w, idem, done := pw.beginIdempotent(w, r, header, payload, offers)
	if done {
		return
	}
	defer idem.finish(r.Context())
	idx := matchOffer(offers, payload.Accepted)
	if idx < 0 {
		challenge.Error = "No matching payment requirements"
		pw.writeChallenge(w, challenge)
		return
	}
	method := pw.opts.Methods[idx]
	flow = methodFlow(method, flow)
	info := RequestInfo{Method: r.Method, Route: rule.Path, Resource: challenge.Resource.URL, Flow: flow}
	charge, err := method.Authorize(r.Context(), offers[idx], payload, info)
	if err != nil {
		var c Corrector
		if errors.As(err, &c) {
			challenge.Accepts[idx] = c.Correct(offers[idx])
		}
		pw.rejectPayment(w, challenge, err)
		return
	}
	pw.serveCharged(w, r, next, charge, flow, offers[idx].Network)
}

// serveCharged runs the handler and makes the charge when the flow says: before the handler
// runs, when its status and headers arrive, or once its whole body is buffered. The response
// streams from the moment it is charged. A handler answer of 400 or more is passed through and
// nothing is charged, except in FlowBefore, where the payment was taken first.
func (pw *Paywall) serveCharged(w http.ResponseWriter, r *http.Request, next http.Handler, charge Charge, flow Flow, network string) {
	// Detached: once the handler has run, the charge must be finished or released even when the
	// client has gone away.
	detached := context.WithoutCancel(r.Context())
	if s, ok := charge.(Standalone); ok {
		pw.serveStandalone(detached, w, s, network)
		return
	}
	if _, ok := charge.(Deferrable); !ok && flow == FlowAsync {
		flow = FlowAuto // the method would not defer this one (a payer over its bound)
	}
	pwr := newPaidWriter(pw, detached, w, charge, flow, network)
	if flow == FlowBefore {
		// Asked again right before the payment is taken: the upstream may have started failing
		// while the payment was verified, and an upfront payment is not given back.
		if pw.refusedByGate(w) {
			charge.Cancel(detached, "upstream_unavailable")
			return
		}
		if !pwr.prepay() {
			return
		}
	}
	r.Header.Set(HeaderPayer, charge.Payer())
	if pwr.finish(runHandler(next, pwr, r)) {
		panic(http.ErrAbortHandler)
	}
}

// serveStandalone completes a charge that is an operation of its own and answers with its body.
func (pw *Paywall) serveStandalone(ctx context.Context, w http.ResponseWriter, charge Standalone, network string) {
	settlement, ok := pw.complete(ctx, w, charge, network)
	if !ok {
		return
	}
	h := w.Header()
	if enc, err := x402.EncodeHeader(settlement); err == nil {
		h.Set(x402.HeaderPaymentResponse, enc)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(charge.Body())
}

// complete runs Complete within the charge timeout. On failure it has written the settlement
// failure (a 402) and reports false.
func (pw *Paywall) complete(ctx context.Context, w http.ResponseWriter, charge Charge, network string) (*x402.SettlementResponse, bool) {
	return pw.finishCharge(ctx, w, charge, network, charge.Complete)
}

// finishCharge runs step (the charge's Complete or Defer) within the charge timeout. On failure
// it has written the settlement failure (a 402, or 503 when nothing was charged and the cause
// is an outage) and reports false.
func (pw *Paywall) finishCharge(ctx context.Context, w http.ResponseWriter, charge Charge, network string,
	step func(context.Context) (*x402.SettlementResponse, error)) (*x402.SettlementResponse, bool) {
	ctx, cancel := context.WithTimeout(ctx, pw.opts.ChargeTimeout)
	defer cancel()
	settlement, err := step(ctx)
	if err == nil {
		return settlement, true
	}
	pw.log.Warn("charging a verified payment failed; response withheld", "err", err, "payer", charge.Payer())
	if settlement == nil && errors.Is(err, ErrUnavailable) {
		w.Header().Set("Retry-After", retryAfterOf(err))
		writeJSONError(w, http.StatusServiceUnavailable, "payment_unavailable",
			"the payment could not be recorded right now; nothing was charged, retry")
		return nil, false
	}
	if settlement == nil {
		reason, _ := x402.ReasonOf(err)
		if reason == "" {
			reason = x402.ReasonUnexpectedSettleError
		}
		settlement = &x402.SettlementResponse{ErrorReason: string(reason), ErrorMessage: x402.MessageOf(err), Payer: charge.Payer(), Network: network}
	}
	settlement.Success = false
	settlement.Transaction = ""
	pw.writeSettlementFailure(w, *settlement)
	return nil, false
}

// offerKey names the offers of one price, declared upfront or not.
type offerKey struct {
	price   string
	upfront bool
}

// offersFor returns a fresh slice of every method's offer for price; with upfront, OnChain
// methods' offers declare the upfront payment flow. The offers themselves are built once per
// price: a pricing table has few prices, and building an offer formats checksummed addresses (a
// keccak each). The slice is a copy because a corrective 402 replaces one of its elements; the
// offers' Extra maps are shared and never written.
func (pw *Paywall) offersFor(price *big.Int, upfrontFlow bool) []x402.PaymentRequirements {
	key := offerKey{price.String(), upfrontFlow}
	cached, ok := pw.offers.Load(key)
	if !ok {
		built := make([]x402.PaymentRequirements, len(pw.opts.Methods))
		for i, m := range pw.opts.Methods {
			built[i] = m.Requirements(price)
			if _, onChain := m.(OnChain); onChain && upfrontFlow {
				built[i] = upfront(built[i])
			}
		}
		cached, _ = pw.offers.LoadOrStore(key, built)
	}
	return slices.Clone(cached.([]x402.PaymentRequirements))
}

// matchOffer returns the index of the offer the payer accepted, or -1.
func matchOffer(offers []x402.PaymentRequirements, accepted x402.PaymentRequirements) int {
	for i, o := range offers {
		if x402.SameOffer(o, accepted) {
			return i
		}
	}
	return -1
}

// stripPaymentHeaders removes what the protected handler must not see or trust.
func stripPaymentHeaders(r *http.Request) {
	for _, h := range []string{x402.HeaderPaymentSignature, x402.HeaderPaymentV1, x402.HeaderPaymentResponse, x402.HeaderPaymentResponseV1, HeaderPayer} {
		r.Header.Del(h)
	}
}

func resourceURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}
