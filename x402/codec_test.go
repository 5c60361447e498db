package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func samplePayload() PaymentPayload {
	return PaymentPayload{
		X402Version: 2,
		Resource:    &ResourceInfo{URL: "http://127.0.0.1:8402/v1/quote"},
		Accepted: PaymentRequirements{
			Scheme: "exact", Network: "eip155:1337", Amount: "1000",
			Asset:             "0x5FbDB2315678afecb367f032d93F642f64180aa3",
			PayTo:             "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
			MaxTimeoutSeconds: 60,
			Extra:             map[string]any{"name": "USD Coin", "version": "2"},
		},
		Payload: json.RawMessage(`{"signature":"0x01","authorization":{"from":"0x1"}}`),
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPaymentPayloadRoundTrip(t *testing.T) {
	want := samplePayload()
	h, err := EncodeHeader(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePaymentPayload(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !SameOffer(got.Accepted, want.Accepted) || got.Resource.URL != want.Resource.URL {
		t.Fatalf("round trip changed the payload: %+v", got)
	}
	if got.Accepted.Extra["name"] != "USD Coin" {
		t.Fatalf("extra lost: %+v", got.Accepted.Extra)
	}
	// Raw (unpadded) base64 is accepted too.
	if _, err := DecodePaymentPayload(strings.TrimRight(h, "="), 0); err != nil {
		t.Fatalf("unpadded header rejected: %v", err)
	}
}

func TestDecodePaymentPayloadRejects(t *testing.T) {
	valid, _ := EncodeHeader(samplePayload())
	cases := []struct {
		name   string
		header string
		want   error
	}{
		{"empty", "", ErrBadBase64},
		{"not base64", "%%%not-base64%%%", ErrBadBase64},
		{"url-safe alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(b64(`{"x402Version":2,"a":"??>>??"}`)), ErrBadBase64},
		{"not json", b64("hello"), ErrBadJSON},
		{"truncated json", b64(`{"x402Version":2,"accepted":{`), ErrBadJSON},
		{"trailing data", b64(`{"x402Version":2} {}`), ErrBadJSON},
		{"wrong type", b64(`{"x402Version":"2"}`), ErrBadJSON},
		{"huge number", b64(`{"x402Version":2,"accepted":{"maxTimeoutSeconds":1` + strings.Repeat("0", 400) + `}}`), ErrBadJSON},
		{"duplicate key", b64(`{"x402Version":2,"x402Version":2}`), ErrBadJSON},
		{"case-colliding key", b64(`{"x402Version":2,"accepted":{"amount":"1","Amount":"2"}}`), ErrBadJSON},
		{"deep nesting", b64(strings.Repeat("[", 100) + strings.Repeat("]", 100)), ErrBadJSON},
		{"version 1", b64(`{"x402Version":1,"scheme":"exact","network":"base","payload":{}}`), ErrBadVersion},
		{"version 3", b64(`{"x402Version":3}`), ErrBadVersion},
		{"missing scheme", b64(`{"x402Version":2,"accepted":{"network":"eip155:1"},"payload":{}}`), ErrMissingField},
		{"missing payload", b64(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1"}}`), ErrMissingField},
		{"null payload", b64(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1"},"payload":null}`), ErrMissingField},
		{"too large", valid + strings.Repeat("A", DefaultMaxHeaderBytes), ErrHeaderTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePaymentPayload(tc.header, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !IsMalformed(err) {
				t.Fatalf("%v is not classified as malformed", err)
			}
		})
	}
}

func TestSameOffer(t *testing.T) {
	a := samplePayload().Accepted
	b := a
	b.Asset = strings.ToLower(a.Asset)
	if !SameOffer(a, b) {
		t.Fatal("the letter case of an address must not matter")
	}
	for _, mutate := range []func(*PaymentRequirements){
		func(r *PaymentRequirements) { r.Amount = "999" },
		// Another spelling of the amount is another offer (the reference compares the strings).
		func(r *PaymentRequirements) { r.Amount = "0001000" },
		func(r *PaymentRequirements) { r.Amount = "-1000" },
		func(r *PaymentRequirements) { r.Scheme = "upto" },
		func(r *PaymentRequirements) { r.Network = "eip155:1" },
		func(r *PaymentRequirements) { r.PayTo = "0x0000000000000000000000000000000000000001" },
		func(r *PaymentRequirements) { r.Asset = "0x0000000000000000000000000000000000000001" },
	} {
		c := a
		mutate(&c)
		if SameOffer(a, c) {
			t.Fatalf("offer %+v must differ from %+v", c, a)
		}
	}
}

// TestParseAmount: one spelling per amount. "010000" used to read as 10000; a leading zero is
// refused now (the defect 8), like every other non-canonical form.
func TestParseAmount(t *testing.T) {
	max := maxUint256.String()
	good := map[string]string{"0": "0", "10000": "10000", "18446744073709551617": "18446744073709551617",
		strings.Repeat("9", 77): strings.Repeat("9", 77), max: max}
	for in, want := range good {
		v, ok := ParseAmount(in)
		if !ok || v.String() != want {
			t.Errorf("ParseAmount(%q) = %v, %v", in, v, ok)
		}
	}
	above := new(big.Int).Add(maxUint256, big.NewInt(1)).String()
	for _, in := range []string{"", "-1", "+1", "1e6", "0x10", "0.01", " 1", "1 ", strings.Repeat("9", 79),
		"010000", "00", "01", "0000000001000", "-0", "１", "1_000", "1,000", above, "0" + max} {
		if _, ok := ParseAmount(in); ok {
			t.Errorf("ParseAmount(%q) accepted", in)
		}
	}
}

func TestReasonErrors(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:8545: refused")
	err := Fail(ReasonExactInsufficientBalance, "balance 5 is below 1000", cause)
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, ReasonExactInsufficientBalance) || !errors.Is(wrapped, cause) {
		t.Fatal("reason and cause must both be visible to errors.Is")
	}
	if r, ok := ReasonOf(wrapped); !ok || r != ReasonExactInsufficientBalance {
		t.Fatalf("ReasonOf = %q %v", r, ok)
	}
	if msg := MessageOf(wrapped); strings.Contains(msg, "10.0.0.1") {
		t.Fatalf("payer-facing message leaks the cause: %q", msg)
	}
	if _, ok := ReasonOf(errors.New("plain")); ok {
		t.Fatal("a plain error has no reason")
	}
}
