package paywall

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/payper/payper/x402"
)

// writerState is where a paid response stands.
type writerState int

const (
	stateWaiting   writerState = iota // nothing written yet
	stateBuffering                    // status below 400, body held until the charge is made
	stateStreaming                    // status and headers sent: the body passes through as it comes
	stateAnswered                     // the paywall answered instead (the charge failed): the body is dropped
)

// Errors a paid response's writer gives the handler once its body can go nowhere; a reverse
// proxy then stops copying the upstream's body.
var (
	errAnswered = errors.New("paywall: the response was answered by the paywall")
	errTooLarge = errors.New("paywall: the response is larger than a paid route buffers")
)

// paidWriter is what the protected handler writes a paid response to. It holds the status and
// headers back until the charge is made at the point the flow names, then either streams the
// body as it comes or, for the flows that settle after the body, buffers it (up to the limit)
// and releases it once charged. A status of 400 or more is passed through and its charge given
// back, except a prepaid one (FlowBefore), which stays taken.
type paidWriter struct {
	pw      *Paywall
	ctx     context.Context // detached from the request: the charge must end either way
	out     http.ResponseWriter
	charge  Charge
	flow    Flow
	network string
	limit   int64

	header     http.Header // the handler's
	status     int
	state      writerState
	body       bytes.Buffer
	overflow   bool                     // FlowAfterBody: the body outgrew the buffer
	settled    bool                     // the charge is complete or deferred: it is never given back
	prepaid    bool                     // completed before the handler ran
	cancelled  bool                     // given back
	settlement *x402.SettlementResponse // sent in PAYMENT-RESPONSE
}

func newPaidWriter(pw *Paywall, ctx context.Context, out http.ResponseWriter, charge Charge, flow Flow, network string) *paidWriter {
	return &paidWriter{pw: pw, ctx: ctx, out: out, charge: charge, flow: flow, network: network,
		limit: pw.opts.MaxResponseBytes, header: make(http.Header)}
}

func (w *paidWriter) Header() http.Header { return w.header }

// WriteHeader decides, from the status and the flow, whether the response streams now (charged
// first below 400, given back at 400 or more) or is buffered until the end.
func (w *paidWriter) WriteHeader(status int) {
	if w.state != stateWaiting {
		return
	}
	if status < 200 && status != http.StatusSwitchingProtocols {
		return // an informational answer (100, 103) is not forwarded on a paid route
	}
	w.status = status
	switch {
	case w.prepaid:
		w.release()
	case status >= 400:
		w.cancel("upstream_status")
		w.release()
	case w.flow == FlowAfterBody || (w.flow == FlowAuto && !streamsAtHeaders(w.header, w.limit)):
		w.state = stateBuffering
	default:
		if w.commit(nil) {
			w.release()
		}
	}
}

func (w *paidWriter) Write(p []byte) (int, error) {
	if w.state == stateWaiting {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case stateStreaming:
		return w.out.Write(p)
	case stateBuffering:
		if int64(w.body.Len())+int64(len(p)) <= w.limit {
			return w.body.Write(p)
		}
		if w.flow == FlowAfterBody {
			w.overflow = true
			return 0, errTooLarge
		}
		// FlowAuto: the body is larger than a paid route buffers. Its status and headers are
		// known and below 400, so it is charged now and streams from here.
		if !w.commit(nil) {
			return 0, errAnswered
		}
		w.release()
		return w.out.Write(p)
	}
	return 0, errAnswered
}

// Flush passes through once the response streams; before, nothing may leave.
func (w *paidWriter) Flush() {
	if w.state == stateStreaming {
		_ = http.NewResponseController(w.out).Flush()
	}
}

// commit makes the charge (Defer for FlowAsync, Complete otherwise) for the response held so
// far; kept is its body when complete, nil when it is not known yet. On failure the paywall has
// answered and commit reports false.
func (w *paidWriter) commit(kept []byte) bool {
	if d, ok := w.charge.(Deferrable); ok && w.flow == FlowAsync {
		s, ok := w.pw.finishCharge(w.ctx, w.out, w.charge, w.network, d.Defer)
		if ok {
			deferred(w.out, w.charge)
		}
		return w.committed(s, ok)
	}
	answer := keptAnswer{status: w.status, header: w.header, body: kept, omitted: kept == nil}
	if !w.pw.keepForRetry(w.ctx, w.out, w.charge, answer) {
		return w.committed(nil, false)
	}
	s, ok := w.pw.finishCharge(w.ctx, w.out, w.charge, w.network, w.charge.Complete)
	return w.committed(s, ok)
}

func (w *paidWriter) committed(s *x402.SettlementResponse, ok bool) bool {
	if !ok {
		w.state = stateAnswered
		return false
	}
	w.settled, w.settlement = true, s
	return true
}

// prepay completes the charge before the handler runs (FlowBefore). On failure the paywall has
// answered and prepay reports false.
func (w *paidWriter) prepay() bool {
	answer := keptAnswer{omitted: true}
	if !w.pw.keepForRetry(w.ctx, w.out, w.charge, answer) {
		return false
	}
	s, ok := w.pw.finishCharge(w.ctx, w.out, w.charge, w.network, w.charge.Complete)
	if !ok {
		return false
	}
	w.settled, w.prepaid, w.settlement = true, true, s
	return true
}

// release sends the status and headers, with the paywall's PAYMENT-RESPONSE in place of any
// the handler set, then what was buffered; the response streams from here.
func (w *paidWriter) release() {
	dst := w.out.Header()
	for k, v := range w.header {
		dst[k] = v
	}
	dst.Del(x402.HeaderPaymentResponse)
	dst.Del(x402.HeaderPaymentResponseV1)
	if w.settlement != nil {
		if enc, err := x402.EncodeHeader(w.settlement); err == nil {
			dst.Set(x402.HeaderPaymentResponse, enc)
		}
	}
	w.out.WriteHeader(w.status)
	w.state = stateStreaming
	if w.body.Len() > 0 {
		_, _ = w.out.Write(w.body.Bytes())
		w.body = bytes.Buffer{}
	}
}

func (w *paidWriter) cancel(reason string) {
	if w.settled || w.cancelled {
		return
	}
	w.cancelled = true
	w.charge.Cancel(w.ctx, reason)
}

// finish ends the response once the handler returned (err nil) or gave up (err from
// runHandler). It reports an abort when part of the response already reached the client, which
// only a dropped connection can tell that the rest will not come.
func (w *paidWriter) finish(err error) (abort bool) {
	if err != nil {
		return w.failed(err)
	}
	if w.state == stateWaiting {
		w.WriteHeader(http.StatusOK) // the handler wrote nothing: an empty 200
	}
	if w.state == stateBuffering && w.commit(w.body.Bytes()) {
		w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
		w.release()
	}
	return false
}

// failed handles a handler that gave up: before anything reached the client, the charge is
// given back (unless it was prepaid) and the client told why; after, the connection is dropped.
func (w *paidWriter) failed(err error) (abort bool) {
	payer := w.charge.Payer()
	p, _ := err.(*handlerPanic)
	aborted := p != nil && p.value == http.ErrAbortHandler
	switch {
	case w.state == stateAnswered:
		return false
	case w.state == stateStreaming:
		if !aborted {
			w.pw.log.Error("protected handler panicked mid-response", "err", err, "payer", payer)
		}
		w.pw.log.Warn("a paid response broke off after it began; the connection is dropped", "payer", payer, "charged", w.settled)
		if c, ok := w.out.(*captureWriter); ok {
			c.truncated()
		}
		return true
	case w.overflow:
		w.cancel("response_too_large")
		w.pw.log.Warn("paid response exceeds the buffer limit; payment released", "limit", w.limit, "payer", payer)
		writeJSONError(w.out, http.StatusBadGateway, "response_too_large",
			"the upstream response is larger than a paid route may buffer; nothing was charged")
		return false
	}
	w.cancel("handler_panic")
	charged := "nothing was charged"
	if w.settled {
		charged = "the payment was taken before the request was served and is not refunded"
		if enc, err := x402.EncodeHeader(w.settlement); err == nil {
			w.out.Header().Set(x402.HeaderPaymentResponse, enc)
		}
	}
	if aborted {
		// The handler gave up mid-response (the upstream's body broke off or stalled past its
		// bound). Nothing of it reached the client, which can still be told so.
		w.pw.log.Warn("the upstream's response broke off", "payer", payer, "charged", w.settled)
		writeJSONError(w.out, http.StatusBadGateway, "upstream_unavailable", "the upstream's response broke off before it ended; "+charged)
		return false
	}
	w.pw.log.Error("protected handler panicked", "err", err, "payer", payer, "charged", w.settled)
	writeJSONError(w.out, http.StatusBadGateway, "upstream_error", "the upstream failed while serving a paid request; "+charged)
	return false
}
