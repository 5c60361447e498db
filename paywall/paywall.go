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
	// MaxResponseBytes caps the protected handler's response, which is held back until the
	// payment is charged (default 32 MiB).
	MaxResponseBytes int64
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
	offers sync.Map // price (decimal string) -> []x402.PaymentRequirements, one per method
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
	offers := pw.offersFor(rule.Price)
	challenge := x402.PaymentRequired{
		X402Version: x402.Version,
		Resource:    x402.ResourceInfo{URL: resourceURL(r), Description: rule.Description},
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
	info := RequestInfo{Method: r.Method, Route: rule.Path, Resource: challenge.Resource.URL}
	charge, err := pw.opts.Methods[idx].Authorize(r.Context(), offers[idx], payload, info)
	if err != nil {
		var c Corrector
		if errors.As(err, &c) {
			challenge.Accepts[idx] = c.Correct(offers[idx])
		}
		pw.rejectPayment(w, challenge, err)
		return
	}
	pw.serveCharged(w, r, next, charge, offers[idx].Network)
}

// serveCharged runs the handler into a buffer and releases its response only once the payment is
// charged. A handler answer of 400 or more is passed through and nothing is charged.
func (pw *Paywall) serveCharged(w http.ResponseWriter, r *http.Request, next http.Handler, charge Charge, network string) {
	// Detached: once the handler has run, the charge must be finished or released even when the
	// client has gone away.
	detached := context.WithoutCancel(r.Context())
	if s, ok := charge.(Standalone); ok {
		pw.serveStandalone(detached, w, s, network)
		return
	}
	r.Header.Set(HeaderPayer, charge.Payer())
	buf := newResponseBuffer(pw.opts.MaxResponseBytes)
	err := runHandler(next, buf, r)
	// Checked first: a reverse proxy aborts (panics with http.ErrAbortHandler) when the buffer
	// refuses a write, and the client must still hear why.
	if buf.overflow {
		charge.Cancel(detached, "response_too_large")
		pw.log.Warn("paid response exceeds the buffer limit; payment released", "limit", pw.opts.MaxResponseBytes, "payer", charge.Payer())
		writeJSONError(w, http.StatusBadGateway, "response_too_large", "the upstream response is larger than a paid route may buffer; nothing was charged")
		return
	}
	if err != nil {
		charge.Cancel(detached, "handler_panic")
		if p, ok := err.(*handlerPanic); ok && p.value == http.ErrAbortHandler {
			// The handler gave up mid-response (the upstream's body broke off or stalled past
			// its bound). Nothing of it reached the client, which can still be told so.
			pw.log.Warn("the upstream's response broke off; payment released", "payer", charge.Payer())
			writeJSONError(w, http.StatusBadGateway, "upstream_unavailable",
				"the upstream's response broke off before it ended; nothing was charged")
			return
		}
		pw.log.Error("protected handler panicked; payment released", "err", err, "payer", charge.Payer())
		writeJSONError(w, http.StatusBadGateway, "upstream_error", "the upstream failed while serving a paid request; nothing was charged")
		return
	}
	if buf.status >= 400 {
		charge.Cancel(detached, "upstream_status")
		buf.flushTo(w)
		return
	}
	if !pw.keepForRetry(detached, w, charge, buf) {
		return
	}
	settlement, ok := pw.complete(detached, w, charge, network)
	if !ok {
		return
	}
	if h, err := x402.EncodeHeader(settlement); err == nil {
		buf.header.Set(x402.HeaderPaymentResponse, h)
	}
	buf.flushTo(w)
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
	ctx, cancel := context.WithTimeout(ctx, pw.opts.ChargeTimeout)
	defer cancel()
	settlement, err := charge.Complete(ctx)
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

// offersFor returns a fresh slice of every method's offer for price. The offers themselves are
// built once per price: a pricing table has few prices, and building an offer formats
// checksummed addresses (a keccak each). The slice is a copy because a corrective 402 replaces
// one of its elements; the offers' Extra maps are shared and never written.
func (pw *Paywall) offersFor(price *big.Int) []x402.PaymentRequirements {
	key := price.String()
	cached, ok := pw.offers.Load(key)
	if !ok {
		built := make([]x402.PaymentRequirements, len(pw.opts.Methods))
		for i, m := range pw.opts.Methods {
			built[i] = m.Requirements(price)
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
