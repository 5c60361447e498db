package x402

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// referencePayload is the envelope as encoding/json decodes it after the strict check: what
// decodePaymentPayloadJSON replaced, and is held to.
func referencePayload(raw []byte) (PaymentPayload, error) {
	var p PaymentPayload
	if err := CheckStrictJSON(raw); err != nil {
		return p, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	err := dec.Decode(&p)
	return p, err
}

// envelopeKeys are the struct keys at every level of the envelope.
var envelopeKeys = []string{"x402Version", "resource", "accepted", "payload", "extensions", "url", "description",
	"mimeType", "scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds", "extra"}

// caseVariantKey reports whether raw has a key that only differs in case from an envelope key:
// encoding/json takes those, the envelope decoder does not.
func caseVariantKey(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		s, ok := tok.(string)
		if !ok {
			continue
		}
		for _, k := range envelopeKeys {
			if s != k && strings.EqualFold(s, k) {
				return true
			}
		}
	}
}

func TestDecodeEnvelopeMatchesEncodingJSON(t *testing.T) {
	sample, _ := json.Marshal(samplePayload())
	for _, in := range []string{
		string(sample),
		`null`, `{}`, ` {"x402Version":2} `, `[]`, `"x"`, `1`,
		`{"x402Version":"2"}`, `{"x402Version":2.0}`, `{"x402Version":1e1}`, `{"x402Version":-3}`,
		`{"x402Version":99999999999999999999}`, `{"x402Version":null,"resource":null,"accepted":null,"payload":null,"extensions":null}`,
		`{"resource":{"url":"http://x/\u00e9","description":null,"other":[1]}}`, `{"resource":"x"}`, `{"resource":[]}`,
		`{"accepted":{"scheme":"exact","maxTimeoutSeconds":60,"extra":{"n":1.5e3,"s":"a\"b","o":{"k":[1,{"z":null}]},"t":true,"f":false,"z":null}}}`,
		`{"accepted":{"maxTimeoutSeconds":"60"}}`, `{"accepted":{"extra":[]}}`, `{"accepted":{"extra":{}}}`, `{"accepted":[]}`,
		`{"accepted":{"scheme":1}}`, `{"extensions":{"a":{"b":1},"c":"d"}}`, `{"extensions":"x"}`, `{"extensions":{}}`,
		`{"payload":{"type":"voucher"},"unknown":{"deep":[{"x":1}]}}`, `{"payload":  [1, 2] }`,
	} {
		checkEnvelopeParity(t, []byte(in))
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	sample, _ := json.Marshal(samplePayload())
	f.Add(sample)
	f.Add([]byte(`{"accepted":{"extra":{"n":1,"o":{"k":[1]}}},"resource":{"url":"u"},"extensions":{"a":null}}`))
	f.Add([]byte(`{"x402Version":2,"payload":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if caseVariantKey(raw) {
			return
		}
		checkEnvelopeParity(t, raw)
	})
}

func checkEnvelopeParity(t *testing.T, raw []byte) {
	t.Helper()
	got, err := decodePaymentPayloadJSON(raw)
	want, refErr := referencePayload(raw)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("%s: error %v, encoding/json %v", raw, err, refErr)
	}
	if err != nil {
		if !IsMalformed(err) {
			t.Fatalf("%s: error %v is not classified as malformed", raw, err)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", raw, got, want)
	}
}
