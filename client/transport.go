package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/x402"
)

// Payer creates payments for one scheme.
type Payer interface {
	Scheme() string
	CreatePayload(req x402.PaymentRequirements, resource *x402.ResourceInfo) (*x402.PaymentPayload, error)
}

// ErrNoPayableRequirement means the server asked for payment but offered nothing this transport
// may pay: no registered scheme, or every offer is above the limits.
var ErrNoPayableRequirement = errors.New("client: no payable payment requirement")

// Payment describes a payment the transport made.
type Payment struct {
	Requirement x402.PaymentRequirements
	Resource    string
	// Settlement is the server's PAYMENT-RESPONSE; nil when it sent none.
	Settlement *x402.SettlementResponse
	// StatusCode is the status of the paid response.
	StatusCode int
}

// Transport is an http.RoundTripper that pays x402 402 responses.
type Transport struct {
	// Base sends the requests (default http.DefaultTransport).
	Base http.RoundTripper
	// Payers in order of preference.
	Payers []Payer
	// MaxPerRequest caps one payment in atomic units; nil means no cap (use Budget then).
	MaxPerRequest *big.Int
	// Budget caps total spending; nil means no total cap.
	Budget *Budget
	// Networks, when set, restricts payments to these CAIP-2 networks.
	Networks []string
	// Assets, when set, restricts payments to these token addresses (case-insensitive).
	Assets []string
	// MaxBodyBytes caps a request body the transport buffers to send it a second time
	// (default 8 MiB).
	MaxBodyBytes int64
	// OnPayment, if set, is called after every paid attempt that got an answer (a payer that
	// resynchronises from a corrective 402 makes two).
	OnPayment func(Payment)

	// MaxRetries is how many times a request is sent again after a connection error or a 502,
	// 503 or 504 answer, waiting between attempts as RetryPolicy says and at least as long as a
	// Retry-After asks (up to the policy's maximum). A paid request is resent with the same
	// signed payment, byte for byte, so it is never paid twice; when the server declared the
	// x402 payment-identifier extension, it is also resent on 409 with Retry-After (the first
	// copy is still being served) and on 402 settlement_pending (the same payment gets the
	// response once its settlement lands). An unpaid request is resent only when its method is
	// idempotent (GET, HEAD, OPTIONS, TRACE) or it carries an Idempotency-Key header. A request
	// body is buffered (see MaxBodyBytes) or remade with GetBody for every attempt. 0 means
	// DefaultMaxRetries; a negative value turns retries off.
	MaxRetries int
	// RetryPolicy shapes the waits between attempts (Initial, Max, Jitter, Sleep); its
	// Attempts is ignored in favour of MaxRetries. The zero value waits 100 ms, then doubles up
	// to 5 s, with jitter.
	RetryPolicy backoff.Policy
	// NoIdempotency stops the transport from adding a payment identifier to payments for
	// servers that declare the x402 payment-identifier extension. With it (the default), each
	// payment carries its own "pay_…" identifier, the same on every retry of that payment, so
	// the server answers a retry from what it kept instead of serving or charging it again.
	NoIdempotency bool
}

// RoundTrip sends req; on a 402 it pays once and resends. A payer that keeps state (Settler) may
// ask for one more attempt after a corrective 402 that charged nothing.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base()
	if req.Header.Get(x402.HeaderPaymentSignature) != "" || req.Header.Get(x402.HeaderPaymentV1) != "" {
		return base.RoundTrip(req) // the caller pays for this one itself
	}
	replay, err := t.replayableBody(req)
	if err != nil {
		return nil, err
	}
	resp, err := t.firstAttempt(req, replay)
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		return resp, err
	}
	challenge, err := readChallenge(resp)
	if err != nil {
		return resp, nil // not an x402 402: hand it to the caller untouched
	}
	chosen, payer, err := t.choose(challenge.Accepts)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	amount, _ := x402.ParseAmount(chosen.Amount)
	if t.Budget != nil {
		if err := t.Budget.Reserve(amount); err != nil {
			resp.Body.Close()
			return nil, err
		}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()

	paid, again, unknown, err := t.pay(req, replay, payer, chosen, challenge)
	if err != nil {
		if errors.Is(err, errNotSent) {
			t.refund(amount)
		}
		return nil, err
	}
	if again && paid.StatusCode == http.StatusPaymentRequired {
		// The payer resynchronised from this 402 (a corrective answer): one more attempt for the
		// same offer, under the same budget reservation.
		if next, cerr := readChallenge(paid); cerr == nil && hasOffer(next.Accepts, chosen) {
			io.Copy(io.Discard, io.LimitReader(paid.Body, 1<<20))
			paid.Body.Close()
			var unknownAgain bool
			if paid, _, unknownAgain, err = t.pay(req, replay, payer, chosen, next); err != nil {
				if errors.Is(err, errNotSent) {
					t.refund(amount)
				}
				return nil, err
			}
			unknown = unknown || unknownAgain
		}
	}
	settlement, _ := SettlementFrom(paid)
	// A refusal gives the budget back, unless an attempt went unanswered: the server may have
	// taken that one.
	if paid.StatusCode == http.StatusPaymentRequired && (settlement == nil || !settlement.Success) && !unknown {
		if settlement == nil || settlement.ErrorReason != string(x402.ReasonSettlementPending) {
			t.refund(amount) // refused outright: nothing was taken
		}
	}
	return paid, nil
}

// errNotSent marks a payment that failed before anything reached the server. A Settler is told
// of such a failure with an error wrapping it, so it can take back what it reserved.
var errNotSent = errors.New("client: payment not sent")

// firstAttempt sends the request as the caller made it, retried as an unpaid request may be.
func (t *Transport) firstAttempt(req *http.Request, replay func() (io.ReadCloser, error)) (*http.Response, error) {
	if !retryableUnpaid(req) {
		return t.base().RoundTrip(req)
	}
	resp, _, err := t.roundTripRetrying(req.Context(), func(attempt int) (*http.Request, error) {
		if attempt == 1 {
			return req, nil
		}
		again := req.Clone(req.Context())
		if replay != nil {
			body, err := replay()
			if err != nil {
				return nil, fmt.Errorf("client: resend the request body: %w", err)
			}
			again.Body = body
		}
		return again, nil
	}, func(r *http.Response) bool { return unavailable(r.StatusCode) })
	return resp, err
}

// pay creates a payment for offer, sends req with it (again, with the same payment, as
// MaxRetries allows) and reports the outcome to the payer and OnPayment. retry is the payer's
// wish to try once more (see Settler); it is never granted after an attempt that went
// unanswered, since that attempt may have been charged. unknown reports such an attempt.
func (t *Transport) pay(req *http.Request, replay func() (io.ReadCloser, error), payer Payer, offer x402.PaymentRequirements, challenge *x402.PaymentRequired) (resp *http.Response, retry, unknown bool, err error) {
	ctx := req.Context()
	var firstBody io.ReadCloser
	if replay != nil {
		// The body is made again before any payment exists: without it nothing can be sent.
		if firstBody, err = replay(); err != nil {
			return nil, false, false, fmt.Errorf("%w: resend the request body: %w", errNotSent, err)
		}
	}
	payload, err := payer.CreatePayload(offer, &challenge.Resource)
	if err != nil {
		closeReader(firstBody)
		return nil, false, false, fmt.Errorf("%w: create payment: %w", errNotSent, err)
	}
	settler, _ := payer.(Settler)
	identified := t.identify(payload, challenge)
	header, err := x402.EncodeHeader(payload)
	if err != nil {
		closeReader(firstBody)
		err = fmt.Errorf("%w: create payment: %w", errNotSent, err)
		if settler != nil {
			settler.Settled(ctx, payload, nil, err)
		}
		return nil, false, false, err
	}
	build := func(attempt int) (*http.Request, error) {
		again := req.Clone(ctx)
		switch {
		case replay == nil:
		case attempt == 1:
			again.Body = firstBody
		default:
			body, err := replay()
			if err != nil {
				return nil, fmt.Errorf("client: resend the request body: %w", err)
			}
			again.Body = body
		}
		again.Header.Set(x402.HeaderPaymentSignature, header)
		return again, nil
	}
	// An error here leaves the payment counted: it may have been used before the connection broke.
	resp, unknown, err = t.roundTripRetrying(ctx, build, func(r *http.Response) bool { return retryablePaid(r, identified) })
	if settler != nil {
		retry = settler.Settled(ctx, payload, resp, err) && !unknown
	}
	if err != nil {
		return nil, false, unknown, err
	}
	if t.OnPayment != nil {
		settlement, _ := SettlementFrom(resp)
		t.OnPayment(Payment{Requirement: offer, Resource: challenge.Resource.URL, Settlement: settlement, StatusCode: resp.StatusCode})
	}
	return resp, retry, unknown, nil
}

// identify echoes the server's extensions in payload and, unless NoIdempotency, gives the
// payment its own identifier when the server declared payment-identifier. It reports whether
// an identifier was added.
func (t *Transport) identify(payload *x402.PaymentPayload, challenge *x402.PaymentRequired) bool {
	payload.Extensions = challenge.Extensions // echo what the server declared
	if t.NoIdempotency {
		return false
	}
	ext, ok, err := x402.WithPaymentIdentifier(challenge.Extensions, x402.NewPaymentID())
	if err != nil || !ok {
		return false
	}
	payload.Extensions = ext
	return true
}

func closeReader(r io.ReadCloser) {
	if r != nil {
		r.Close()
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

func hasOffer(offers []x402.PaymentRequirements, want x402.PaymentRequirements) bool {
	for _, o := range offers {
		if x402.SameOffer(o, want) {
			return true
		}
	}
	return false
}

func (t *Transport) refund(amount *big.Int) {
	if t.Budget != nil && amount != nil {
		t.Budget.Refund(amount)
	}
}

// replayableBody makes the request body readable twice, buffering it when needed.
func (t *Transport) replayableBody(req *http.Request) (func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		return req.GetBody, nil
	}
	limit := t.MaxBodyBytes
	if limit <= 0 {
		limit = 8 << 20
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("client: read request body: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("client: request body over %d bytes cannot be resent with a payment", limit)
	}
	get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	req.Body, _ = get()
	req.GetBody = get
	return get, nil
}

// choose picks the offer to pay: the first one, in the server's order, that a payer wants ahead
// of that order (Preferrer), else the first one a payer supports, within the limits.
func (t *Transport) choose(offers []x402.PaymentRequirements) (x402.PaymentRequirements, Payer, error) {
	var reasons []error
	var fallback Payer
	var fallbackOffer x402.PaymentRequirements
	for _, o := range offers {
		if err := t.allowed(o); err != nil {
			reasons = append(reasons, err)
			continue
		}
		supported := false
		for _, p := range t.Payers {
			if p.Scheme() != o.Scheme {
				continue
			}
			supported = true
			preferred := false
			if pr, ok := p.(Preferrer); ok {
				var err error
				if preferred, err = pr.Prefer(o); err != nil {
					reasons = append(reasons, fmt.Errorf("%s on %s: %w", o.Scheme, o.Network, err))
					continue
				}
			}
			if preferred {
				return o, p, nil
			}
			if fallback == nil {
				fallback, fallbackOffer = p, o
			}
		}
		if !supported {
			reasons = append(reasons, fmt.Errorf("scheme %q: no payer", o.Scheme))
		}
	}
	if fallback != nil {
		return fallbackOffer, fallback, nil
	}
	return x402.PaymentRequirements{}, nil, fmt.Errorf("%w: %w", ErrNoPayableRequirement, errors.Join(reasons...))
}

// allowed checks an offer against the transport's limits.
func (t *Transport) allowed(o x402.PaymentRequirements) error {
	amount, ok := x402.ParseAmount(o.Amount)
	switch {
	case !ok:
		return fmt.Errorf("%s: amount %q is not an integer", o.Scheme, o.Amount)
	case t.MaxPerRequest != nil && amount.Cmp(t.MaxPerRequest) > 0:
		return fmt.Errorf("%s on %s: price %s is above the maximum %s", o.Scheme, o.Network, amount, t.MaxPerRequest)
	case len(t.Networks) > 0 && !containsFold(t.Networks, o.Network):
		return fmt.Errorf("%s: network %s is not allowed", o.Scheme, o.Network)
	case len(t.Assets) > 0 && !containsFold(t.Assets, o.Asset):
		return fmt.Errorf("%s: asset %s is not allowed", o.Scheme, o.Asset)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if len(v) == len(s) && bytes.EqualFold([]byte(v), []byte(s)) {
			return true
		}
	}
	return false
}

// readChallenge parses a 402: the v2 PAYMENT-REQUIRED header.
func readChallenge(resp *http.Response) (*x402.PaymentRequired, error) {
	h := resp.Header.Get(x402.HeaderPaymentRequired)
	if h == "" {
		return nil, errors.New("client: 402 without PAYMENT-REQUIRED")
	}
	pr, err := x402.DecodePaymentRequired(h, 64<<10)
	if err != nil {
		return nil, err
	}
	if len(pr.Accepts) == 0 {
		return nil, errors.New("client: 402 offers no payment requirements")
	}
	return pr, nil
}

// SettlementFrom decodes a response's PAYMENT-RESPONSE header, if any.
func SettlementFrom(resp *http.Response) (*x402.SettlementResponse, error) {
	h := resp.Header.Get(x402.HeaderPaymentResponse)
	if h == "" {
		h = resp.Header.Get(x402.HeaderPaymentResponseV1)
	}
	if h == "" {
		return nil, nil
	}
	return x402.DecodeSettlementResponse(h, 64<<10)
}
