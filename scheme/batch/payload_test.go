package batch

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/payper/payper/x402"
)

// edited returns payload JSON with one member replaced (or removed when value is nil), found by
// a dotted path.
func edited(t testing.TB, raw []byte, path string, value any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(path, ".")
	cur := m
	for _, k := range keys[:len(keys)-1] {
		cur = cur[k].(map[string]any)
	}
	if value == nil {
		delete(cur, keys[len(keys)-1])
	} else {
		cur[keys[len(keys)-1]] = value
	}
	out, _ := json.Marshal(m)
	return out
}

func TestParsePayloadRejectsMalformed(t *testing.T) {
	w := newWorld(t)
	dep, _ := json.Marshal(w.deposit(10000, 1000))
	vch, _ := json.Marshal(w.voucher(2000))
	ref, _ := json.Marshal(must(w.signer.RefundPayload(w.req(), big.NewInt(2000), big.NewInt(5))))
	bad := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		name string
		raw  json.RawMessage
		want x402.Reason
	}{
		{"not an object", bad(`"voucher"`), x402.ReasonBatchPayloadType},
		{"no type", edited(t, vch, "type", nil), x402.ReasonBatchPayloadType},
		{"claim from a client", edited(t, vch, "type", "claim"), x402.ReasonBatchPayloadType},
		{"unknown type", edited(t, vch, "type", "upto"), x402.ReasonBatchPayloadType},
		{"type not a string", edited(t, vch, "type", 7), x402.ReasonBatchPayloadType},
		{"unknown key", edited(t, vch, "extra", "x"), x402.ReasonBatchVoucherPayload},
		{"deposit in a voucher", edited(t, vch, "deposit", map[string]any{}), x402.ReasonBatchVoucherPayload},
		{"wrong case key", bad(strings.Replace(string(vch), `"voucher":{`, `"Voucher":{`, 1)), x402.ReasonBatchVoucherPayload},
		{"duplicate type", bad(strings.Replace(string(vch), `"type":"voucher"`, `"type":"voucher","type":"voucher"`, 1)), x402.ReasonBatchPayloadType},
		{"duplicate nested key", bad(strings.Replace(string(vch), `"maxClaimableAmount":"2000"`, `"maxClaimableAmount":"2000","maxClaimableAmount":"1"`, 1)), x402.ReasonBatchPayloadType}, // the whole payload is not strict JSON: its type cannot be trusted
		{"trailing data", bad(string(vch) + `{}`), x402.ReasonBatchPayloadType},
		{"short address", edited(t, vch, "channelConfig.payer", "0x1234"), x402.ReasonBatchVoucherPayload},
		{"address without 0x", edited(t, vch, "channelConfig.payer", strings.Repeat("ab", 20)), x402.ReasonBatchVoucherPayload},
		{"delay as string", edited(t, vch, "channelConfig.withdrawDelay", "900"), x402.ReasonBatchVoucherPayload},
		{"fractional delay", bad(strings.Replace(string(vch), `"withdrawDelay":900`, `"withdrawDelay":900.5`, 1)), x402.ReasonBatchVoucherPayload},
		{"exponent delay", bad(strings.Replace(string(vch), `"withdrawDelay":900`, `"withdrawDelay":9e2`, 1)), x402.ReasonBatchVoucherPayload},
		{"negative delay", bad(strings.Replace(string(vch), `"withdrawDelay":900`, `"withdrawDelay":-900`, 1)), x402.ReasonBatchVoucherPayload},
		{"uint40 overflow", bad(strings.Replace(string(vch), `"withdrawDelay":900`, `"withdrawDelay":1099511627776`, 1)), x402.ReasonBatchVoucherPayload},
		{"short salt", edited(t, vch, "channelConfig.salt", "0x00"), x402.ReasonBatchVoucherPayload},
		{"short channel id", edited(t, vch, "voucher.channelId", "0x1234"), x402.ReasonBatchChannelIDInvalid},
		{"0X channel id", edited(t, vch, "voucher.channelId", "0X"+strings.Repeat("0", 64)), x402.ReasonBatchChannelIDInvalid},
		{"leading zero amount", edited(t, vch, "voucher.maxClaimableAmount", "02000"), x402.ReasonBatchVoucherPayload},
		{"leading zero deposit", edited(t, dep, "deposit.amount", "010000"), x402.ReasonBatchDepositPayload},
		{"leading zero window", edited(t, dep, "deposit.authorization.erc3009Authorization.validAfter", "00"), x402.ReasonBatchDepositPayload},
		{"leading zero refund", edited(t, ref, "amount", "05"), x402.ReasonBatchRefundAmountInvalid},
		{"config as array", edited(t, vch, "channelConfig", []any{}), x402.ReasonBatchVoucherPayload},
		{"amount as number", bad(strings.Replace(string(vch), `"maxClaimableAmount":"2000"`, `"maxClaimableAmount":2000`, 1)), x402.ReasonBatchVoucherPayload},
		{"hex amount", edited(t, vch, "voucher.maxClaimableAmount", "0x7d0"), x402.ReasonBatchVoucherPayload},
		{"negative amount", edited(t, vch, "voucher.maxClaimableAmount", "-1"), x402.ReasonBatchVoucherPayload},
		{"uint128 overflow", edited(t, vch, "voucher.maxClaimableAmount", new(big.Int).Lsh(big.NewInt(1), 128).String()), x402.ReasonBatchVoucherPayload},
		{"empty signature", edited(t, vch, "voucher.signature", "0x"), x402.ReasonBatchVoucherPayload},
		{"odd hex signature", edited(t, vch, "voucher.signature", "0xabc"), x402.ReasonBatchVoucherPayload},
		{"null voucher", edited(t, vch, "voucher", json.RawMessage(`null`)), x402.ReasonBatchVoucherPayload},
		{"no authorization", edited(t, dep, "deposit.authorization.erc3009Authorization", nil), x402.ReasonBatchERC3009AuthorizationRequired},
		{"both authorizations", edited(t, dep, "deposit.authorization.permit2Authorization", map[string]any{}), x402.ReasonBatchDepositPayload},
		{"zero deposit", edited(t, dep, "deposit.amount", "0"), x402.ReasonBatchDepositPayload},
		{"no deposit", edited(t, dep, "deposit", nil), x402.ReasonBatchDepositPayload},
		{"short auth salt", edited(t, dep, "deposit.authorization.erc3009Authorization.salt", "0x01"), x402.ReasonBatchDepositPayload},
		{"refund amount zero", edited(t, ref, "amount", "0"), x402.ReasonBatchRefundAmountInvalid},
		{"refund amount text", edited(t, ref, "amount", "all"), x402.ReasonBatchRefundAmountInvalid},
		{"refund unknown key", edited(t, ref, "refundNonce", "0"), x402.ReasonBatchRefundPayload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePayload(tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			var xe *x402.Error
			if !errors.As(err, &xe) || xe.Message == "" {
				t.Fatalf("no payer-facing message: %v", err)
			}
			// The payer reads protocol paths, never Go's wording.
			if !strings.HasPrefix(xe.Message, "payload") {
				t.Errorf("message %q does not name the field from payload", xe.Message)
			}
			for _, g := range []string{"json:", "Go ", "wire", "big.Int", "encoding/", "batch.", "x402.", "invalid byte", "cannot unmarshal"} {
				if strings.Contains(xe.Message, g) {
					t.Errorf("message %q shows %q", xe.Message, g)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestParsePayloadAcceptsAnyAddressCase(t *testing.T) {
	w := newWorld(t)
	p := w.voucher(2000)
	raw, _ := json.Marshal(p)
	lower := edited(t, raw, "channelConfig.receiver", strings.ToLower(p.ChannelConfig.Receiver.Hex()))
	upper := edited(t, raw, "channelConfig.token", "0x"+strings.ToUpper(p.ChannelConfig.Token.Hex()[2:]))
	for _, r := range []json.RawMessage{lower, upper} {
		got, err := ParsePayload(r)
		if err != nil {
			t.Fatal(err)
		}
		if got.ChannelConfig != p.ChannelConfig {
			t.Fatalf("config %+v", got.ChannelConfig)
		}
	}
}

func TestFacilitatorPayloadsRejectMalformed(t *testing.T) {
	v := loadVectors(t)
	claim := []byte(v.Server.ClaimPayload)
	for name, tc := range map[string]struct {
		raw   json.RawMessage
		parse func(json.RawMessage) error
		want  x402.Reason
	}{
		"claim wrong type":     {edited(t, claim, "type", "settle"), parseClaim, x402.ReasonBatchPayloadType},
		"claim empty":          {edited(t, claim, "claims", []any{}), parseClaim, x402.ReasonBatchClaimPayload},
		"claim not a list":     {edited(t, claim, "claims", map[string]any{}), parseClaim, x402.ReasonBatchClaimPayload},
		"claim over voucher":   {json.RawMessage(strings.Replace(v.Server.ClaimPayload, `"totalClaimed":"2000"`, `"totalClaimed":"2001"`, 1)), parseClaim, x402.ReasonBatchClaimPayload},
		"claim bad row":        {json.RawMessage(strings.Replace(v.Server.ClaimPayload, `"channel":{`, `"chanel":{`, 1)), parseClaim, x402.ReasonBatchClaimPayload},
		"settle missing token": {edited(t, []byte(v.Server.SettlePayload), "token", nil), parseSettle, x402.ReasonBatchSettlePayload},
		"refund no nonce":      {edited(t, []byte(v.Server.RefundSettlement), "refundNonce", nil), parseRefundSettle, x402.ReasonBatchRefundPayload},
		"refund no amount":     {edited(t, []byte(v.Server.RefundSettlement), "amount", nil), parseRefundSettle, x402.ReasonBatchRefundPayload},
	} {
		if err := tc.parse(tc.raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %s", name, err, tc.want)
		}
	}
	if ty, err := PayloadTypeOf(claim); err != nil || ty != TypeClaim {
		t.Errorf("PayloadTypeOf = %q, %v", ty, err)
	}
}

func parseClaim(raw json.RawMessage) error  { _, err := ParseClaimPayload(raw); return err }
func parseSettle(raw json.RawMessage) error { _, err := ParseSettlePayload(raw); return err }
func parseRefundSettle(raw json.RawMessage) error {
	_, err := ParseRefundSettlePayload(raw)
	return err
}

func TestRequirementsExtra(t *testing.T) {
	w := newWorld(t)
	req := w.req()
	e, err := ParseRequirementsExtra(req.Extra)
	if err != nil {
		t.Fatal(err)
	}
	if e.ReceiverAuthorizer != w.offer.ReceiverAuthorizer || e.WithdrawDelay != 900 || e.MinDeposit.Int64() != 10000 || e.Name != "USD Coin" {
		t.Fatalf("extra %+v", e)
	}
	for name, extra := range map[string]map[string]any{
		"no authorizer":     {"withdrawDelay": 900},
		"zero authorizer":   {"receiverAuthorizer": "0x0000000000000000000000000000000000000000"},
		"delay as string":   {"receiverAuthorizer": addrB.Hex(), "withdrawDelay": "900"},
		"min deposit float": {"receiverAuthorizer": addrB.Hex(), "minDeposit": 1.5},
		"bad state":         {"receiverAuthorizer": addrB.Hex(), "channelState": map[string]any{"channelId": "0x12"}},
	} {
		if _, err := ParseRequirementsExtra(extra); !errors.Is(err, x402.ReasonInvalidPaymentRequirements) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// The reference client assumes the minimum delay when none is advertised.
	if e, err := ParseRequirementsExtra(map[string]any{"receiverAuthorizer": addrB.Hex()}); err != nil || e.WithdrawDelay != MinWithdrawDelay {
		t.Fatalf("default delay: %+v, %v", e, err)
	}
	if _, err := (&Signer{Key: w.payer}).VoucherPayload(x402.PaymentRequirements{Scheme: Scheme, Network: "eip155:1337", PayTo: addrC.Hex(), Asset: addrT.Hex()}, big.NewInt(1)); err == nil {
		t.Fatal("signer paid a requirement without a receiver authorizer")
	}
}

func TestOfferValidate(t *testing.T) {
	good := testOffer(t)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Offer){
		"network":    func(o *Offer) { o.Network = "base" },
		"authorizer": func(o *Offer) { o.ReceiverAuthorizer = [20]byte{} },
		"delay":      func(o *Offer) { o.WithdrawDelay = 60 },
		"domain":     func(o *Offer) { o.Name = "" },
		"method":     func(o *Offer) { o.AssetTransferMethod = "transfer" },
	} {
		o := good
		edit(&o)
		if o.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := good.MinDepositFor(big.NewInt(7)); got.Int64() != 70 {
		t.Errorf("default min deposit %s", got)
	}
	good.MinDeposit = big.NewInt(50)
	if got := good.MinDepositFor(big.NewInt(70)); got.Int64() != 70 {
		t.Errorf("min deposit below price: %s", got)
	}
}

func TestSettlementResponseRoundTrip(t *testing.T) {
	w := newWorld(t)
	state := ChannelState{ChannelID: w.voucher(1).Voucher.ChannelID, Balance: big.NewInt(10), TotalClaimed: big.NewInt(2), RefundNonce: big.NewInt(1), ChargedCumulativeAmount: big.NewInt(5)}
	resp := VoucherResponse("eip155:1337", w.signer.Address(), state, big.NewInt(1))
	hdr, err := x402.EncodeHeader(resp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSettlementResponse(hdr, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Amount != "" || got.Transaction != "" || got.Extra.ChannelState.ChargedCumulativeAmount.Int64() != 5 || got.Extra.ChargedAmount.Int64() != 1 {
		t.Fatalf("decoded %+v", got)
	}
	if x := got.X402(); !x.Success || x.Network != "eip155:1337" {
		t.Fatalf("x402 view %+v", x)
	}
	raw, _ := json.Marshal(resp)
	if !strings.Contains(string(raw), `"amount":""`) {
		t.Fatalf("voucher response must carry amount \"\": %s", raw)
	}
}
