package exact

import (
	"context"
	"encoding/json"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/x402"
)

func FuzzParsePayload(f *testing.F) {
	req := testOffer().Requirements(big.NewInt(1000))
	p := signedPayload(f, mustKey(f, payerKeyHex), req)
	f.Add([]byte(p.Payload))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"signature":"0x","authorization":{}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		pl, err := ParsePayload(raw)
		if err != nil {
			msg := x402.MessageOf(err)
			if _, ok := x402.ReasonOf(err); !ok || !strings.HasPrefix(msg, "payload") {
				t.Fatalf("failure without a reason or a field path: %v", err)
			}
			for _, g := range goisms {
				if strings.Contains(quoted.ReplaceAllString(msg, `""`), g) {
					t.Fatalf("message %q shows %q", msg, g)
				}
			}
			return
		}
		if pl.Authorization.Value.Sign() < 0 || len(pl.Signature) == 0 {
			t.Fatalf("accepted an invalid payload: %s", raw)
		}
		// What parses writes back to the same terms.
		again, err := json.Marshal(pl)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePayload(again)
		if err != nil || back.Authorization.Value.Cmp(pl.Authorization.Value) != 0 || back.Authorization.Nonce != pl.Authorization.Nonce ||
			back.Authorization.ValidBefore.Cmp(pl.Authorization.ValidBefore) != 0 || string(back.Signature) != string(pl.Signature) {
			t.Fatalf("round trip changed the payload: %s -> %s (%v)", raw, again, err)
		}
	})
}

// FuzzVerifyMutation mutates a valid signed payload: whatever still verifies must authorize
// exactly what was signed.
func FuzzVerifyMutation(f *testing.F) {
	req := testOffer().Requirements(big.NewInt(1000))
	key := mustKey(f, payerKeyHex)
	p := signedPayload(f, key, req)
	orig, err := ParsePayload(p.Payload)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(p.Payload))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := &Verifier{Chain: chainState{balance: big.NewInt(1 << 40)}, Now: func() time.Time { return testNow }}
		q := *p
		q.Payload = json.RawMessage(raw)
		got, err := v.Verify(context.Background(), req, &q)
		if err != nil {
			return
		}
		a, o := got.Payload.Authorization, orig.Authorization
		if a.From != o.From || a.To != o.To || a.Value.Cmp(o.Value) != 0 || a.Nonce != o.Nonce ||
			a.ValidAfter.Cmp(o.ValidAfter) != 0 || a.ValidBefore.Cmp(o.ValidBefore) != 0 {
			t.Fatalf("a mutated payload verified with different terms: %+v vs %+v", a, o)
		}
	})
}

// quoted matches the Go-quoted input a message may echo (a key, a type name the payer wrote),
// which the Go-wording checks skip.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
