package paywall

import (
	"errors"
	"net/http"
	"strings"

	"github.com/payper/payper/x402"
)

// Refusals of the payment header itself, before anything in it is decoded. They are malformed
// payments (400): ErrBadBase64 is what a comma-joined list would have failed with anyway.
var (
	errSeveralPaymentHeaders = errors.New("several PAYMENT-SIGNATURE headers: a request carries exactly one payment")
	errPaymentHeaderList     = errors.New("PAYMENT-SIGNATURE holds a comma-separated list: a request carries exactly one payment")
)

// paymentHeader reads the v2 payment header (net/http matches header names in any case). A
// request must carry it at most once: with two, the gateway and a proxy in front of it could act
// on different payments (net/http's Get returns the first, others keep the last), and an
// intermediary that merges repeated fields joins them with commas, which base64 never holds.
// The reference server reads the joined value and fails to decode it, so refusing both forms
// is no stricter than it; the v1 X-PAYMENT header is never read, only removed.
func paymentHeader(r *http.Request) (string, error) {
	values := r.Header.Values(x402.HeaderPaymentSignature)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", errSeveralPaymentHeaders
	}
	v := strings.TrimSpace(values[0])
	if strings.IndexByte(v, ',') >= 0 {
		return "", errPaymentHeaderList
	}
	return v, nil
}
