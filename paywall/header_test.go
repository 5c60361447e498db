package paywall

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestSeveralPaymentHeadersAre400: a proxy in front may read another copy of a repeated header
// than the gateway does, so a request must carry exactly one payment. Two PAYMENT-SIGNATURE
// fields, or one field holding a comma-joined list (how intermediaries merge repeats), are
// refused before anything is decoded; the upstream is not called and nothing is reserved.
func TestSeveralPaymentHeadersAre400(t *testing.T) {
	f := newFixture(t)
	one := cashHeader(t, "t1", f.offer()).Get("Payment-Signature")
	two := cashHeader(t, "t2", f.offer()).Get("Payment-Signature")
	for name, h := range map[string]http.Header{
		"two fields":     {"Payment-Signature": {one, two}},
		"same twice":     {"Payment-Signature": {one, one}},
		"comma-joined":   {"Payment-Signature": {one + ", " + two}},
		"empty and full": {"Payment-Signature": {"", one}},
	} {
		resp, body := f.get(t, "/v1/quote", h)
		var e errorBody
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil ||
			e.Error != "invalid_payload" || !strings.Contains(e.Message, "PAYMENT-SIGNATURE") {
			t.Errorf("%s: status %d, body %s", name, resp.StatusCode, body)
		}
	}
	if f.upstream.calls != 0 || len(f.method.events) != 0 {
		t.Fatalf("upstream calls %d, payment events %v", f.upstream.calls, f.method.events)
	}
	// One header still pays.
	if resp, body := f.get(t, "/v1/quote", http.Header{"Payment-Signature": {one}}); resp.StatusCode != 200 {
		t.Fatalf("a single header: %d %s", resp.StatusCode, body)
	}
}
