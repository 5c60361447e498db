package paywall

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/x402"
)

// Defaults of Idempotency.
const (
	DefaultIdempotencyTTL    = 24 * time.Hour
	DefaultKeptResponseBytes = 1 << 20
	defaultIdempotencyWait   = 2 * time.Second
	idempotencyLeaseMargin   = 5 * time.Minute
	// A charge left kept by a request that died is taken over this long after the charge
	// timeout: a retry only ever looks the charge up, never sends it again, so an early
	// takeover costs at most a "pending" answer.
	keptChargeLeaseMargin       = 5 * time.Second
	idempotencyStoreCallTimeout = 10 * time.Second
)

// HeaderReplayed marks an answer served again from the kept response of a payment identifier.
const HeaderReplayed = "Idempotent-Replayed"

// idempotency is the paywall's payment-identifier state; nil when the extension is off.
type idempotency struct {
	Idempotency
	chargeTimeout time.Duration
	declared      map[string]json.RawMessage // the 402's extensions, shared and never written
	log           *slog.Logger
}

func newIdempotency(opts Idempotency, chargeTimeout time.Duration, log *slog.Logger) *idempotency {
	if opts.Store == nil {
		return nil
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultIdempotencyTTL
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultKeptResponseBytes
	}
	if opts.Lease <= 0 {
		opts.Lease = chargeTimeout + idempotencyLeaseMargin
	}
	if opts.Wait <= 0 {
		opts.Wait = defaultIdempotencyWait
	}
	return &idempotency{
		Idempotency:   opts,
		chargeTimeout: chargeTimeout,
		declared:      map[string]json.RawMessage{x402.ExtensionPaymentIdentifier: x402.PaymentIdentifierDeclaration(opts.Required)},
		log:           log,
	}
}

// extensions returns what every 402 declares.
func (pw *Paywall) extensions() map[string]json.RawMessage {
	if pw.idem == nil {
		return nil
	}
	return pw.idem.declared
}

// idemKey is a payment identifier the current request holds.
type idemKey struct {
	idem  *idempotency
	id    string
	owner string
	state KeptState // what the store holds: in_flight, then kept once keepForRetry stored the response
	// implicit marks an identifier the gateway gave a payment that carried none: it serves a
	// retry only while the first answer was never delivered, and is dropped once it was.
	implicit bool
	kept     KeptUpdate // what keepForRetry stored
	ref      string     // the charge's Resumable.Ref, once it is kept or deferred
	w        *captureWriter
}

// beginIdempotent handles the payment identifier of a decoded payment before anything is
// verified, as the extension asks: a retry may no longer verify once its payment settled or its
// authorization expired. A payment without an identifier passes through (400 when one is
// required). A new identifier is claimed, and the request continues writing to the returned
// writer, which captures the answer for finish. A held identifier is answered here (done true):
// the kept response, 409 for another payment or while the first is running, or how a pending
// charge ended.
func (pw *Paywall) beginIdempotent(w http.ResponseWriter, r *http.Request, header string, p *x402.PaymentPayload,
	offers []x402.PaymentRequirements) (_ http.ResponseWriter, _ *idemKey, done bool) {
	idem := pw.idem
	if idem == nil {
		return w, nil, false
	}
	id, err := x402.PaymentIdentifier(p.Extensions)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_payment_identifier", err.Error())
		return w, nil, true
	}
	implicit := false
	if id == "" {
		if idem.Required {
			writeJSONError(w, http.StatusBadRequest, "payment_identifier_required",
				"this server requires the payment-identifier extension with an info.id in the payment")
			return w, nil, true
		}
		// A payment whose charge can end pending or die with the process after it was sent
		// (exact) gets an identifier of its own, so that a stock client retrying the same
		// payment is served once its settlement lands, identifier or not.
		if pw.resumerFor(p, offers) == nil {
			return w, nil, false
		}
		implicit = true
	}
	fingerprint, err := requestFingerprint(header, pw.opts.MaxHeaderBytes, r)
	if err != nil {
		pw.writeBadRequest(w, err)
		return w, nil, true
	}
	if implicit {
		// ':' never appears in a client's identifier, so the two kinds cannot collide.
		id = "implicit:" + fingerprint[:48]
	}
	claim := PaymentIDClaim{ID: id, Fingerprint: fingerprint, Owner: randomToken(), Lease: idem.Lease, TTL: idem.TTL, Relaxed: true}
	deadline := time.Now().Add(idem.Wait)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		held, claimed, err := idem.Store.ClaimPaymentID(r.Context(), claim)
		switch {
		case err != nil:
			idem.log.Warn("payment identifier store unavailable", "err", err)
			writeUnavailable(w, "the payment could not be checked right now; nothing was charged, retry with the same payment")
			return w, nil, true
		case claimed:
			k := &idemKey{idem: idem, id: id, owner: claim.Owner, state: KeptInFlight, implicit: implicit}
			k.w = newCaptureWriter(w, k, idem.MaxResponseBytes)
			return k.w, k, false
		case implicit:
			// Without an identifier the payment itself is the key, and its own rules answer a
			// replay (nonce already used) unless its first request died or ended pending with its
			// response kept: then the response is served, once.
			if held.State == KeptCharging && !held.Leased && pw.resumeOnce(w, r, held, p, offers) {
				return w, nil, true
			}
			return w, nil, false
		case held.Fingerprint != fingerprint:
			writeJSONError(w, http.StatusConflict, "payment_identifier_conflict",
				"this payment identifier was used with another payment or request; use a new identifier for a new payment")
			return w, nil, true
		case held.State == KeptComplete:
			replay(w, pw.refreshDeferred(r.Context(), held, p, offers))
			return w, nil, true
		case held.State == KeptCharging && !held.Leased:
			if pw.resume(w, r, held, p, offers) {
				return w, nil, true
			}
			continue // the charge was given back unsent: the payment runs again, at once
		}
		// The first request is still running: wait for its answer a little, then let the caller
		// come back.
		if time.Now().Add(delay).After(deadline) || backoff.Sleep(r.Context(), delay) != nil {
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusConflict, "payment_in_progress",
				"a request with this payment is still being served; retry with the same payment to get its answer")
			return w, nil, true
		}
	}
}

// resumerFor is the method that would take payment p when its charges can be resumed, or nil.
func (pw *Paywall) resumerFor(p *x402.PaymentPayload, offers []x402.PaymentRequirements) Resumer {
	for i, o := range offers {
		if o.Scheme == p.Accepted.Scheme {
			r, _ := pw.opts.Methods[i].(Resumer)
			return r
		}
	}
	return nil
}

// resumeOnce answers a retry of a payment without an identifier whose first request kept its
// response before its charge was sent and never delivered it: when the charge settled, the kept
// response is served, and only by the retry that records it complete. It reports false, having
// answered nothing, when the payment's own rules must answer instead.
func (pw *Paywall) resumeOnce(w http.ResponseWriter, r *http.Request, held KeptResponse, p *x402.PaymentPayload, offers []x402.PaymentRequirements) bool {
	idem := pw.idem
	resumer := pw.resumerFor(p, offers)
	if resumer == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idempotencyStoreCallTimeout)
	defer cancel()
	settlement, err := resumer.Resume(ctx, held.ChargeRef)
	if err != nil {
		if reason, _ := x402.ReasonOf(err); reason == x402.ReasonSettlementPending {
			pw.writeSettlementFailure(w, settlementFailure(settlement, err, p.Accepted.Network))
			return true
		}
		if errors.Is(err, ErrChargeReleased) || !errors.Is(err, ErrUnavailable) {
			// Given back, or failed: nothing was taken, and nothing is left to serve.
			_ = idem.Store.ReleasePaymentID(ctx, held.ID, held.Owner)
		}
		return false
	}
	header := decodeKeptHeader(held.Header)
	if enc, err := x402.EncodeHeader(settlement); err == nil {
		header.Set(x402.HeaderPaymentResponse, enc)
	}
	held.Header = encodeKeptHeader(header)
	err = idem.Store.UpdateKeptResponse(ctx, KeptUpdate{
		ID: held.ID, Owner: held.Owner, From: KeptCharging, To: KeptComplete, ChargeRef: held.ChargeRef,
		Status: held.Status, Header: held.Header, Body: held.Body, BodyOmitted: held.BodyOmitted,
	})
	if err != nil {
		return false // another retry served it, or the store failed: the payment's own rules answer
	}
	replay(w, held)
	// Served once: the record has done its work.
	_ = idem.Store.ReleasePaymentID(ctx, held.ID, held.Owner)
	return true
}

// requestFingerprint binds a payment identifier to the exact payment (the canonical digest of
// its header) and to the request line it paid for, so that no other payment and no other
// resource can be answered from its record. Stricter than the extension's minimum (the payment
// alone), as its "request binding" section recommends.
func requestFingerprint(header string, maxBytes int, r *http.Request) (string, error) {
	digest, err := x402.PaymentDigest(header, maxBytes)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte("payper payment-identifier v1"), digest[:], []byte(r.Method), []byte(r.URL.Path), []byte(r.URL.RawQuery)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// resume answers a retry of a payment whose first request kept its response and ended while
// the charge was still settling: how the charge ended decides. Nothing is charged here. It
// reports false, having answered nothing, when the charge was given back without being sent
// (the first request died before): the identifier is freed and the payment may run again.
func (pw *Paywall) resume(w http.ResponseWriter, r *http.Request, held KeptResponse, p *x402.PaymentPayload, offers []x402.PaymentRequirements) bool {
	idem := pw.idem
	resumer := pw.resumerFor(p, offers)
	if resumer == nil {
		idem.log.Error("a kept charge cannot be looked up: its payment method is no longer offered", "scheme", p.Accepted.Scheme, "ref", held.ChargeRef)
		writeUnavailable(w, "the payment's outcome cannot be looked up right now; retry with the same payment")
		return true
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idempotencyStoreCallTimeout)
	defer cancel()
	settlement, err := resumer.Resume(ctx, held.ChargeRef)
	reason, _ := x402.ReasonOf(err)
	switch {
	case err == nil:
		held = idem.completeResumed(ctx, held, settlement)
		replay(w, held)
	case errors.Is(err, ErrChargeReleased):
		if rerr := idem.Store.ReleasePaymentID(ctx, held.ID, held.Owner); rerr != nil {
			idem.log.Warn("releasing the identifier of an unsent charge failed", "err", rerr)
			writeUnavailable(w, "the payment's outcome cannot be recorded right now; retry with the same payment")
			return true
		}
		return false
	case errors.Is(err, ErrUnavailable):
		idem.log.Warn("looking up a kept charge failed", "ref", held.ChargeRef, "err", err)
		writeUnavailable(w, "the payment's outcome cannot be looked up right now; retry with the same payment")
	case reason == x402.ReasonSettlementPending:
		pw.writeSettlementFailure(w, settlementFailure(settlement, err, p.Accepted.Network))
	default:
		// The charge failed: nothing was taken, the record goes, and the payment's own state
		// (spent or not) decides a later attempt.
		if rerr := idem.Store.ReleasePaymentID(ctx, held.ID, held.Owner); rerr != nil {
			idem.log.Warn("releasing the identifier of a failed charge failed", "err", rerr)
		}
		pw.writeSettlementFailure(w, settlementFailure(settlement, err, p.Accepted.Network))
	}
	return true
}

// completeResumed records a kept response whose charge settled as complete, with the
// settlement in its PAYMENT-RESPONSE. Any replica may do it; if another did first, its record
// is as good.
func (idem *idempotency) completeResumed(ctx context.Context, held KeptResponse, settlement *x402.SettlementResponse) KeptResponse {
	header := decodeKeptHeader(held.Header)
	if enc, err := x402.EncodeHeader(settlement); err == nil {
		header.Set(x402.HeaderPaymentResponse, enc)
	}
	held.Header = encodeKeptHeader(header)
	err := idem.Store.UpdateKeptResponse(ctx, KeptUpdate{
		ID: held.ID, Owner: held.Owner, From: KeptCharging, To: KeptComplete, ChargeRef: held.ChargeRef,
		Status: held.Status, Header: held.Header, Body: held.Body, BodyOmitted: held.BodyOmitted, Relaxed: true,
	})
	if err != nil && !errors.Is(err, ErrKeptConflict) {
		idem.log.Warn("recording a settled kept response failed; the next retry looks it up again", "err", err)
	}
	held.State = KeptComplete
	return held
}

// refreshDeferred gives a kept answer whose payment was deferred (async, PAYMENT-RESPONSE
// "queued") the settlement's outcome once there is one: a retry of the same payment is how a
// caller learns the transaction that paid for a streamed or deferred answer. Anything else is
// returned as kept.
func (pw *Paywall) refreshDeferred(ctx context.Context, held KeptResponse, p *x402.PaymentPayload, offers []x402.PaymentRequirements) KeptResponse {
	if held.ChargeRef == "" {
		return held
	}
	header := decodeKeptHeader(held.Header)
	s, err := x402.DecodeSettlementResponse(header.Get(x402.HeaderPaymentResponse), 64<<10)
	if err != nil || s.Extra[ExtraSettlement] != SettlementQueued {
		return held
	}
	resumer := pw.resumerFor(p, offers)
	if resumer == nil {
		return held
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idempotencyStoreCallTimeout)
	defer cancel()
	outcome, err := resumer.Resume(ctx, held.ChargeRef)
	reason, _ := x402.ReasonOf(err)
	switch {
	case err == nil:
	case reason == x402.ReasonSettlementPending, errors.Is(err, ErrUnavailable), errors.Is(err, ErrChargeReleased):
		return held // still queued, or unknown now: the accepted form stands
	default:
		failed := settlementFailure(outcome, err, p.Accepted.Network)
		outcome = &failed
	}
	if enc, err := x402.EncodeHeader(outcome); err == nil {
		header.Set(x402.HeaderPaymentResponse, enc)
		held.Header = encodeKeptHeader(header)
	}
	return held
}

// settlementFailure is the failed PAYMENT-RESPONSE for err, from what the method returned.
func settlementFailure(s *x402.SettlementResponse, err error, network string) x402.SettlementResponse {
	var out x402.SettlementResponse
	if s != nil {
		out = *s
	}
	if out.ErrorReason == "" {
		reason, _ := x402.ReasonOf(err)
		if reason == "" {
			reason = x402.ReasonUnexpectedSettleError
		}
		out.ErrorReason, out.ErrorMessage = string(reason), x402.MessageOf(err)
	}
	if out.Network == "" {
		out.Network = network
	}
	out.Success, out.Transaction = false, ""
	return out
}

func writeUnavailable(w http.ResponseWriter, message string) {
	w.Header().Set("Retry-After", "2")
	writeJSONError(w, http.StatusServiceUnavailable, "payment_unavailable", message)
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
