package x402

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func FuzzDecodePaymentPayload(f *testing.F) {
	valid, _ := EncodeHeader(samplePayload())
	f.Add(valid)
	f.Add("")
	f.Add("e30=")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1"},"payload":{"a":[1,2,{"b":null}]}}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"x402Version":2}`)))
	f.Fuzz(func(t *testing.T, header string) {
		p, err := DecodePaymentPayload(header, 0)
		if err != nil {
			if !IsMalformed(err) {
				t.Fatalf("decode error not classified as malformed: %v", err)
			}
			// The message reaches the payer: protocol words only.
			for _, g := range []string{"json:", "Go struct", "Go value", "illegal base64", "cannot unmarshal", "x402."} {
				if strings.Contains(quoted.ReplaceAllString(err.Error(), `""`), g) {
					t.Fatalf("error %q shows %q", err, g)
				}
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same offer.
		h, err := EncodeHeader(p)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		q, err := DecodePaymentPayload(h, len(h)+1)
		if err != nil {
			t.Fatalf("re-decode of a valid payload failed: %v", err)
		}
		if q.Accepted.Scheme != p.Accepted.Scheme || q.Accepted.Network != p.Accepted.Network ||
			q.Accepted.Amount != p.Accepted.Amount {
			t.Fatalf("round trip changed the offer")
		}
	})
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "1000", "010", "00", "-1", "1e3", "115792089237316195423570985008687907853269984665640564039457584007913129639935"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ParseAmount(s)
		if !ok {
			return
		}
		if v.Sign() < 0 || v.Cmp(maxUint256) > 0 {
			t.Fatalf("out of range amount accepted: %s", s)
		}
		if v.String() != s {
			t.Fatalf("%q accepted, but it is not the canonical spelling %s", s, v)
		}
	})
}

// quoted matches the Go-quoted input a message may echo (a key, a type name the payer wrote),
// which the Go-wording checks skip.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
