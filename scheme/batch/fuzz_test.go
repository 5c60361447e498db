package batch

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

func seedPayloads(f *testing.F) {
	v := loadVectors(f)
	for _, p := range v.Payloads {
		f.Add([]byte(p.PayloadJSON))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"type":"voucher","channelConfig":{},"voucher":{}}`))
	f.Add([]byte(`{"type":"deposit","deposit":{"amount":"1","authorization":{"permit2Authorization":{}}}}`))
}

// roundTrip marshals v, parses it back with parse and expects the same bytes again.
func roundTrip[T json.Marshaler](t *testing.T, v T, parse func(json.RawMessage) (T, error)) {
	t.Helper()
	first, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again, err := parse(first)
	if err != nil {
		t.Fatalf("own output does not parse: %v\n%s", err, first)
	}
	second, _ := json.Marshal(again)
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip changed the payload\n%s\n%s", first, second)
	}
}

func FuzzParsePayload(f *testing.F) {
	seedPayloads(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParsePayload(raw)
		if err != nil {
			if _, ok := x402.ReasonOf(err); !ok {
				t.Fatalf("failure without a reason: %v", err)
			}
			msg := x402.MessageOf(err)
			for _, g := range []string{"json:", "Go struct", "Go value", "cannot unmarshal", "wire", "big.Int", "invalid byte", "batch.", "x402."} {
				if strings.Contains(quoted.ReplaceAllString(msg, `""`), g) {
					t.Fatalf("message %q shows %q", msg, g)
				}
			}
			return
		}
		if p.Type != TypeDeposit && p.Type != TypeVoucher && p.Type != TypeRefund {
			t.Fatalf("accepted type %q", p.Type)
		}
		if !fitsUint128(p.Voucher.MaxClaimableAmount) || p.ChannelConfig.WithdrawDelay > maxUint40 || len(p.Voucher.Signature) == 0 {
			t.Fatalf("accepted out-of-range values: %s", raw)
		}
		if p.Type == TypeDeposit && (p.Deposit == nil || p.Deposit.Amount.Sign() <= 0 || (p.Deposit.ERC3009 == nil) == (p.Deposit.Permit2 == nil)) {
			t.Fatalf("accepted a deposit without exactly one authorization: %s", raw)
		}
		roundTrip(t, *p, func(r json.RawMessage) (Payload, error) {
			q, err := ParsePayload(r)
			if err != nil {
				return Payload{}, err
			}
			return *q, nil
		})
	})
}

func FuzzParseFacilitatorPayloads(f *testing.F) {
	v := loadVectors(f)
	f.Add([]byte(v.Server.ClaimPayload))
	f.Add([]byte(v.Server.SettlePayload))
	f.Add([]byte(v.Server.RefundSettlement))
	f.Add([]byte(`{"type":"claim","claims":[{}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if c, err := ParseClaimPayload(raw); err == nil {
			for _, row := range c.Claims {
				if row.TotalClaimed.Cmp(row.MaxClaimableAmount) > 0 {
					t.Fatal("accepted a claim above its voucher")
				}
			}
			roundTrip(t, *c, func(r json.RawMessage) (ClaimPayload, error) {
				q, err := ParseClaimPayload(r)
				if err != nil {
					return ClaimPayload{}, err
				}
				return *q, nil
			})
		}
		if s, err := ParseSettlePayload(raw); err == nil {
			roundTrip(t, *s, func(r json.RawMessage) (SettlePayload, error) {
				q, err := ParseSettlePayload(r)
				if err != nil {
					return SettlePayload{}, err
				}
				return *q, nil
			})
		}
		if r, err := ParseRefundSettlePayload(raw); err == nil {
			if r.Refund.RefundAmount == nil || r.RefundNonce == nil {
				t.Fatal("accepted a refund without amount or nonce")
			}
			roundTrip(t, *r, func(b json.RawMessage) (RefundSettlePayload, error) {
				q, err := ParseRefundSettlePayload(b)
				if err != nil {
					return RefundSettlePayload{}, err
				}
				return *q, nil
			})
		}
	})
}

func FuzzParseRequirementsExtra(f *testing.F) {
	v := loadVectors(f)
	seed, _ := json.Marshal(v.Requirements.Extra)
	f.Add(seed)
	var corrective x402.PaymentRequired
	_ = json.Unmarshal(v.Server.Corrective, &corrective)
	seed, _ = json.Marshal(corrective.Accepts[0].Extra)
	f.Add(seed)
	f.Add([]byte(`{"receiverAuthorizer":"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC","withdrawDelay":1e3}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil {
			return
		}
		e, err := ParseRequirementsExtra(m)
		if err != nil {
			return
		}
		if e.ReceiverAuthorizer == ([20]byte{}) || e.WithdrawDelay > maxUint40 {
			t.Fatalf("accepted %s", raw)
		}
		again, err := ParseRequirementsExtra(e.Map())
		if err != nil {
			t.Fatalf("own Map does not parse: %v", err)
		}
		a, _ := json.Marshal(e.Map())
		b, _ := json.Marshal(again.Map())
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the extra\n%s\n%s", a, b)
		}
	})
}

func FuzzDecodeSettlementResponse(f *testing.F) {
	v := loadVectors(f)
	for _, raw := range []json.RawMessage{v.Server.VoucherResponse, v.Server.DepositResponse} {
		var obj any
		_ = json.Unmarshal(raw, &obj)
		h, _ := x402.EncodeHeader(obj)
		f.Add(h)
	}
	f.Add("e30=")
	f.Fuzz(func(t *testing.T, header string) {
		r, err := DecodeSettlementResponse(header, 0)
		if err != nil {
			return
		}
		if r.Extra != nil && r.Extra.ChargedAmount != nil && !fitsUint128(r.Extra.ChargedAmount) {
			t.Fatal("accepted an out-of-range charge")
		}
		h, err := x402.EncodeHeader(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSettlementResponse(h, len(h)+1); err != nil {
			t.Fatalf("own encoding does not decode: %v", err)
		}
	})
}

// FuzzVerifyVoucherMutation mutates a valid signed voucher payload: whatever still verifies
// must commit to exactly what was signed.
func FuzzVerifyVoucherMutation(f *testing.F) {
	w := newWorld(f)
	orig := w.voucher(2000)
	raw, _ := json.Marshal(orig)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParsePayload(raw)
		if err != nil {
			return
		}
		got, err := w.ver.VerifyVoucher(w.terms, snapshot(1000, 10000, 0), p)
		if err != nil {
			return
		}
		if got.ChannelID != orig.Voucher.ChannelID || p.ChannelConfig != orig.ChannelConfig ||
			p.Voucher.MaxClaimableAmount.Cmp(orig.Voucher.MaxClaimableAmount) != 0 {
			t.Fatalf("a mutated payload verified with other terms: %+v", p)
		}
	})
}

func FuzzChainIDFromNetwork(f *testing.F) {
	for _, s := range []string{"eip155:1337", "eip155:0", "eip155:", "eip155:-1", "eip155:18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := evmsig.ChainIDFromNetwork(s)
		if err != nil {
			return
		}
		if id.Sign() <= 0 || "eip155:"+id.String() != s {
			t.Fatalf("%q parsed as %s", s, id)
		}
	})
}

// quoted matches the Go-quoted input a message may echo (a key, a type name the payer wrote),
// which the Go-wording checks skip.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
