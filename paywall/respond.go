package paywall

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/payper/payper/x402"
)

// errorBody is the JSON body of every non-402 error the paywall writes.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: code, Message: message})
}

// writeChallenge answers 402 with the requirements in PAYMENT-REQUIRED and, the same object, in
// the body.
func (pw *Paywall) writeChallenge(w http.ResponseWriter, challenge x402.PaymentRequired) {
	h, err := x402.EncodeHeader(challenge)
	if err != nil {
		pw.log.Error("encoding a 402 challenge failed", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal_error", "could not build the payment challenge")
		return
	}
	w.Header().Set(x402.HeaderPaymentRequired, h)
	writeJSON(w, http.StatusPaymentRequired, challenge)
}

// writeBadRequest answers an undecodable payment header.
func (pw *Paywall) writeBadRequest(w http.ResponseWriter, err error) {
	code := string(x402.ReasonInvalidPayload)
	if errors.Is(err, x402.ErrBadVersion) {
		code = string(x402.ReasonInvalidVersion)
	}
	writeJSONError(w, http.StatusBadRequest, code, "invalid payment: "+err.Error())
}

// rejectPayment answers a payment that Authorize refused: 402 with a fresh challenge carrying the
// reason, or 503 when the refusal came from unavailable infrastructure.
func (pw *Paywall) rejectPayment(w http.ResponseWriter, challenge x402.PaymentRequired, err error) {
	if errors.Is(err, ErrUnavailable) {
		pw.log.Warn("payment could not be verified: infrastructure unavailable", "err", err)
		w.Header().Set("Retry-After", retryAfterOf(err))
		writeJSONError(w, http.StatusServiceUnavailable, "payment_unavailable",
			"the payment could not be verified right now; nothing was charged, retry with the same payment")
		return
	}
	reason, ok := x402.ReasonOf(err)
	if !ok {
		pw.log.Error("payment verification failed unexpectedly", "err", err)
		reason = x402.ReasonUnexpectedVerifyError
	}
	challenge.Error = string(reason)
	if msg := x402.MessageOf(err); ok && msg != string(reason) {
		challenge.Error += ": " + msg
	}
	pw.writeChallenge(w, challenge)
}

// writeSettlementFailure answers a payment that verified but could not be charged: 402 with a
// failed PAYMENT-RESPONSE, and the protected response withheld.
func (pw *Paywall) writeSettlementFailure(w http.ResponseWriter, s x402.SettlementResponse) {
	if h, err := x402.EncodeHeader(s); err == nil {
		w.Header().Set(x402.HeaderPaymentResponse, h)
	}
	writeJSON(w, http.StatusPaymentRequired, s)
}
