package app

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/payper/payper/config"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// goisms are fragments of Go's error wording, type and package names. A payer speaks x402: the
// answers it gets name protocol fields (payload.authorization.value), and the Go cause goes to
// the log only.
var goisms = []string{"Go struct", "Go value", "wirePayload", "wireAuthorization", "json:", "cannot unmarshal",
	"*big.Int", "big.Int", "exact.", "batch.", "x402.", "paywall.", "encoding/", "illegal base64",
	"invalid character", "unexpected end of JSON", "strconv.", "hex.", "runtime error"}

// TestMalformedPaymentsSpeakProtocol drives malformed envelopes and malformed exact and
// batch-settlement payloads through the whole gateway: each is refused (400 or 402), nothing is
// served, and no answer (body or PAYMENT-REQUIRED) shows Go's wording.
func TestMalformedPaymentsSpeakProtocol(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	exactReq := challenge(t, "GET", url)
	batchReq := offerFor(t, "GET", url, batch.Scheme)
	good := signPayment(t, account(5).Key, exactReq)
	goodPayload := string(good.Payload)

	// envelope returns a header carrying payload under the given accepted offer.
	envelope := func(accepted x402.PaymentRequirements, payload string) string {
		p := *good
		p.Accepted = accepted
		p.Payload = json.RawMessage(payload)
		return encode(t, &p)
	}
	raw := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	acceptedJSON, _ := json.Marshal(exactReq)
	headers := map[string]string{
		"bad base64":          "not base64!",
		"url-safe base64":     strings.NewReplacer("+", "-", "/", "_").Replace(encode(t, good)) + "-_",
		"not JSON":            raw("hello"),
		"truncated JSON":      raw(`{"x402Version":2,"accepted":{`),
		"version as string":   raw(`{"x402Version":"2","accepted":{},"payload":{}}`),
		"version fraction":    raw(`{"x402Version":2.5,"accepted":{},"payload":{}}`),
		"accepted as array":   raw(`{"x402Version":2,"accepted":[],"payload":{}}`),
		"amount as number":    raw(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1337","amount":1000},"payload":{}}`),
		"timeout as string":   raw(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1337","maxTimeoutSeconds":"60"},"payload":{}}`),
		"extra as string":     raw(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1337","extra":"x"},"payload":{}}`),
		"duplicate version":   raw(`{"x402Version":2,"X402Version":2,"accepted":{},"payload":{}}`),
		"payload not object":  raw(`{"x402Version":2,"accepted":` + string(acceptedJSON) + `,"payload":"hello"}`),
		"exact not object":    envelope(exactReq, `[1,2]`),
		"exact empty":         envelope(exactReq, `{}`),
		"exact number":        envelope(exactReq, strings.Replace(goodPayload, `"value":"1000"`, `"value":1000`, 1)),
		"exact VALUE":         envelope(exactReq, strings.Replace(goodPayload, `"value"`, `"VALUE"`, 1)),
		"exact leading zero":  envelope(exactReq, strings.Replace(goodPayload, `"value":"1000"`, `"value":"01000"`, 1)),
		"exact auth array":    envelope(exactReq, `{"signature":"0x00","authorization":[]}`),
		"exact sig number":    envelope(exactReq, `{"signature":7,"authorization":{}}`),
		"exact bad hex":       envelope(exactReq, strings.Replace(goodPayload, `"signature":"0x`, `"signature":"0xzz`, 1)),
		"exact bad nonce":     envelope(exactReq, strings.Replace(goodPayload, `"nonce":"0x`, `"nonce":"0xg`, 1)),
		"batch empty":         envelope(batchReq, `{}`),
		"batch type number":   envelope(batchReq, `{"type":1}`),
		"batch unknown type":  envelope(batchReq, `{"type":"claim"}`),
		"batch bad config":    envelope(batchReq, `{"type":"voucher","channelConfig":{"payer":"0x1"},"voucher":{}}`),
		"batch config array":  envelope(batchReq, `{"type":"voucher","channelConfig":[],"voucher":{}}`),
		"batch leading zero":  envelope(batchReq, `{"type":"voucher","channelConfig":{},"voucher":{"channelId":"0x`+strings.Repeat("ab", 32)+`","maxClaimableAmount":"01","signature":"0x01"}}`),
		"batch bad channel":   envelope(batchReq, `{"type":"voucher","channelConfig":{},"voucher":{"channelId":"0xzz"}}`),
		"batch delay string":  envelope(batchReq, `{"type":"voucher","channelConfig":{"withdrawDelay":"900"},"voucher":{}}`),
		"batch delay float":   envelope(batchReq, `{"type":"deposit","channelConfig":{"withdrawDelay":9.5e2},"voucher":{}}`),
		"batch deposit array": envelope(batchReq, `{"type":"deposit","channelConfig":{},"voucher":{},"deposit":[]}`),
	}
	// Some answers are pinned: they name the field by its protocol path.
	says := map[string]string{
		"exact VALUE":        "payload.authorization.value is missing (keys are case-sensitive",
		"exact leading zero": "payload.authorization.value must be a decimal integer string",
		"exact number":       "payload.authorization.value must be a JSON string",
		"timeout as string":  "accepted.maxTimeoutSeconds must be an integer number",
		"batch leading zero": "payload.channelConfig.payer is missing",
	}
	for name, h := range headers {
		r := send(t, "GET", url, h)
		if r.status != http.StatusBadRequest && r.status != http.StatusPaymentRequired {
			t.Errorf("%s: status %d, body %.300s", name, r.status, r.body)
		}
		texts := []string{r.body}
		if r.required != nil {
			texts = append(texts, r.required.Error)
		}
		for _, text := range texts {
			for _, g := range goisms {
				if strings.Contains(text, g) {
					t.Errorf("%s: the answer shows %q: %.300s", name, g, text)
					break
				}
			}
		}
		if want, ok := says[name]; ok && !strings.Contains(r.body, want) {
			t.Errorf("%s: the answer does not say %q: %.300s", name, want, r.body)
		}
	}
	if n := up.calls.Load(); n != 0 {
		t.Fatalf("the upstream was called %d times for malformed payments", n)
	}
}

// rawRequest sends target byte for byte as the request line's target (http.Client would
// re-encode it) and returns the status.
func rawRequest(t *testing.T, baseURL, method, target string) int {
	t.Helper()
	addr := strings.TrimPrefix(baseURL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestGatewayPricesEverySpellingOfARoute: the gateway as configured prices /V1/QUOTE, refuses
// /v1/quote%00 and /v1/quote;x, and with routing.unlisted deny answers 404 for what no route
// lists; none of it reaches the upstream.
func TestGatewayPricesEverySpellingOfARoute(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	base := e.dev.Info.GatewayURL
	for target, want := range map[string]int{
		"/V1/QUOTE":          402,
		"/v1/Quote/":         402,
		"/v1/quote;x":        400,
		"/v1/quote%00":       400,
		"/v1/quote.":         400,
		"/v1%2Fquote":        400,
		"/v1/free/..;/quote": 400,
	} {
		if got := rawRequest(t, base, "GET", target); got != want {
			t.Errorf("GET %q: %d, want %d", target, got, want)
		}
	}
	deny := e.startGateway(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Routing.Unlisted = config.UnlistedDeny
	})
	for target, want := range map[string]int{"/v1/quote": 402, "/v1/unlisted": 404, "/admin": 404, "/V1/QUOTE": 402} {
		if got := rawRequest(t, deny, "GET", target); got != want {
			t.Errorf("deny: GET %q: %d, want %d", target, got, want)
		}
	}
	if got := rawRequest(t, deny, "DELETE", "/v1/quote"); got != 404 {
		t.Errorf("deny: DELETE /v1/quote: %d, want 404", got)
	}
	if n := up.calls.Load(); n != 0 {
		t.Fatalf("the upstream was called %d times", n)
	}
}
