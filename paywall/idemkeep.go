package paywall

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/payper/payper/x402"
)

// captureWriter passes a held identifier's answer through to the client and keeps a copy of it
// (the body up to a cap) for finish to store.
type captureWriter struct {
	http.ResponseWriter
	key      *idemKey
	limit    int64
	status   int
	header   http.Header // as sent
	body     bytes.Buffer
	overflow bool // the body is not kept: larger than the limit, or cut short
}

func newCaptureWriter(w http.ResponseWriter, k *idemKey, limit int64) *captureWriter {
	return &captureWriter{ResponseWriter: w, key: k, limit: limit}
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
		c.header = c.ResponseWriter.Header().Clone()
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if !c.overflow {
		if int64(c.body.Len())+int64(len(p)) > c.limit {
			c.overflow = true
			c.body.Reset()
		} else {
			c.body.Write(p)
		}
	}
	return c.ResponseWriter.Write(p)
}

// Flush passes through, so a streaming answer still streams.
func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// truncated records that the answer broke off: what was captured is not the whole body, and a
// retry must not be given it as if it were.
func (c *captureWriter) truncated() {
	c.overflow = true
	c.body.Reset()
}

// Unwrap lets http.ResponseController reach the connection.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// keptAnswer is the response held back when a charge that may end pending is made: its status
// and headers, and its body when the flow buffered all of it (omitted when it streams, or was
// not produced yet).
type keptAnswer struct {
	status  int
	header  http.Header
	body    []byte
	omitted bool
}

// keepForRetry stores the protected handler's response, still held back, against the request's
// payment identifier before a charge that may end pending is completed: if the settlement is
// still pending when the request gives up (or the process dies), a retry of the same payment
// gets this response once the settlement lands, never a second charge and never nothing. A
// streamed response keeps only its status and headers (its body does not exist yet), so such a
// retry learns the settlement and that the body cannot be replayed. It reports false when the
// response could not be kept; the charge is then released and the caller answered 503, since an
// unrecoverable answer must not be charged for.
func (pw *Paywall) keepForRetry(ctx context.Context, w http.ResponseWriter, charge Charge, a keptAnswer) bool {
	cw, ok := w.(*captureWriter)
	if !ok {
		return true
	}
	rc, ok := charge.(Resumable)
	if !ok {
		return true
	}
	k := cw.key
	body, omitted := a.body, a.omitted || int64(len(a.body)) > k.idem.MaxResponseBytes
	if omitted {
		body = nil
	}
	header := a.header
	if header == nil {
		header = http.Header{}
	}
	sctx, cancel := context.WithTimeout(ctx, idempotencyStoreCallTimeout)
	defer cancel()
	kept := KeptUpdate{
		ID: k.id, Owner: k.owner, From: KeptInFlight, To: KeptCharging, ChargeRef: rc.Ref(),
		Status: a.status, Header: encodeKeptHeader(header), Body: body, BodyOmitted: omitted,
		Lease: k.idem.chargeTimeout + keptChargeLeaseMargin,
	}
	err := k.idem.Store.UpdateKeptResponse(sctx, kept)
	if err != nil {
		k.idem.log.Warn("keeping a response before its charge failed; payment released", "err", err, "payer", charge.Payer())
		charge.Cancel(ctx, "response_not_kept")
		writeUnavailable(w, "the response could not be kept for a retry; nothing was charged, retry with the same payment")
		return false
	}
	k.state, k.kept, k.ref = KeptCharging, kept, rc.Ref()
	return true
}

// deferred notes the charge of a deferred (async) answer, so that a retry of the payment can
// learn how its settlement ended.
func deferred(w http.ResponseWriter, charge Charge) {
	cw, ok := w.(*captureWriter)
	if !ok {
		return
	}
	if rc, ok := charge.(Resumable); ok {
		cw.key.ref = rc.Ref()
	}
}

// finish records how the request holding k ended, from the answer the client got: a paid
// answer is kept as complete; an answer whose charge is still settling stays kept, its lease
// ended so that the next retry asks the charge; anything else charged nothing, so the
// identifier is released and a retry runs again.
func (k *idemKey) finish(ctx context.Context) {
	if k == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idempotencyStoreCallTimeout)
	defer cancel()
	c := k.w
	var err error
	paid := paidAnswer(c.status, c.header)
	switch {
	// A gateway-given identifier whose answer was delivered has done its work: a replay of the
	// payment is answered by the payment's own rules.
	case k.implicit && paid:
		err = k.idem.Store.ReleasePaymentID(ctx, k.id, k.owner)
	case paid:
		body := c.body.Bytes()
		if c.overflow {
			body = nil
		}
		err = k.idem.Store.UpdateKeptResponse(ctx, KeptUpdate{
			ID: k.id, Owner: k.owner, From: k.state, To: KeptComplete, ChargeRef: k.ref,
			Status: c.status, Header: encodeKeptHeader(c.header), Body: body, BodyOmitted: c.overflow, Relaxed: true,
		})
	case k.state == KeptCharging && c.status == http.StatusPaymentRequired && pendingSettlement(c.header):
		err = k.endLease(ctx)
	default:
		err = k.idem.Store.ReleasePaymentID(ctx, k.id, k.owner)
	}
	if err != nil {
		k.idem.log.Warn("recording the answer of a payment identifier failed; a retry may wait for the lease", "err", err)
	}
}

// paidAnswer reports whether an answer was paid for: below 400 with a PAYMENT-RESPONSE (the
// paywall replaces any the handler set, and sets its own only once the charge succeeded), or at
// 400 or more with a successful one (a payment taken before the handler failed, FlowBefore).
func paidAnswer(status int, h http.Header) bool {
	enc := h.Get(x402.HeaderPaymentResponse)
	switch {
	case status <= 0 || enc == "":
		return false
	case status < 400:
		return true
	}
	s, err := x402.DecodeSettlementResponse(enc, 64<<10)
	return err == nil && s.Success
}

// endLease keeps the kept response as it is and ends the lease, so the next retry asks the
// charge how it ended instead of waiting.
func (k *idemKey) endLease(ctx context.Context) error {
	u := k.kept
	u.From, u.To, u.Lease = KeptCharging, KeptCharging, 0
	return k.idem.Store.UpdateKeptResponse(ctx, u)
}

// pendingSettlement reports whether an answer's PAYMENT-RESPONSE says settlement_pending.
func pendingSettlement(h http.Header) bool {
	enc := h.Get(x402.HeaderPaymentResponse)
	if enc == "" {
		return false
	}
	s, err := x402.DecodeSettlementResponse(enc, 64<<10)
	return err == nil && !s.Success && s.ErrorReason == string(x402.ReasonSettlementPending)
}

// replay answers with a kept response. A response whose body was not kept (larger than the
// limit, streamed before it was charged, or broken off) is answered 409 response_not_kept, with
// its PAYMENT-RESPONSE, so the caller still learns what it paid.
func replay(w http.ResponseWriter, kept KeptResponse) {
	header := decodeKeptHeader(kept.Header)
	if kept.BodyOmitted {
		if s := header.Get(x402.HeaderPaymentResponse); s != "" {
			w.Header().Set(x402.HeaderPaymentResponse, s)
		}
		w.Header().Set("Access-Control-Expose-Headers", "PAYMENT-REQUIRED, PAYMENT-RESPONSE")
		writeJSONError(w, http.StatusConflict, "response_not_kept",
			"this payment's response cannot be sent again: it was larger than the gateway keeps, or streamed; PAYMENT-RESPONSE tells how the payment settled")
		return
	}
	dst := w.Header()
	for name, values := range header {
		dst[name] = values
	}
	dst.Set(HeaderReplayed, "true")
	dst.Set("Content-Length", strconv.Itoa(len(kept.Body)))
	w.WriteHeader(kept.Status)
	_, _ = w.Write(kept.Body)
}

// Headers that describe one transfer rather than the response: not kept.
var unkeptHeaders = []string{"Date", "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "Trailer", "Upgrade", HeaderReplayed}

func encodeKeptHeader(h http.Header) []byte {
	kept := h.Clone()
	for _, name := range unkeptHeaders {
		kept.Del(name)
	}
	b, _ := json.Marshal(kept)
	return b
}

func decodeKeptHeader(b []byte) http.Header {
	h := http.Header{}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &h)
	}
	return h
}
