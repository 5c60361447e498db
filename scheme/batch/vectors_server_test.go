package batch

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// The stock server's answers and its receiver-authorizer signatures, against the Go builders.

func TestVectorsServerShapes(t *testing.T) {
	v := loadVectors(t)
	payer := crypto.PubkeyToAddress(v.key(t, "payer").PublicKey)
	offer := Offer{
		Network: "eip155:1337", Asset: addrT, Name: "USD Coin", Version: "2", PayTo: addrC,
		ReceiverAuthorizer: crypto.PubkeyToAddress(v.key(t, "receiverAuthorizer").PublicKey), WithdrawDelay: 900, MaxTimeoutSeconds: 300,
	}
	if err := offer.Validate(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "requirements", offer.Requirements(big.NewInt(1000)), v.Requirements)

	dep, _ := ParsePayload(json.RawMessage(v.Payloads["deposit"].PayloadJSON))
	id := dep.Voucher.ChannelID
	state := ChannelState{ChannelID: id, Balance: big.NewInt(10000), TotalClaimed: new(big.Int), RefundNonce: new(big.Int), ChargedCumulativeAmount: big.NewInt(2000)}
	voucherResp := VoucherResponse("eip155:1337", payer, state, big.NewInt(1000))
	out, _ := json.Marshal(voucherResp)
	if want := compact(t, v.Server.VoucherResponse); string(out) != want {
		t.Errorf("voucher response\n got %s\nwant %s", out, want)
	}
	state.ChargedCumulativeAmount = big.NewInt(1000)
	sameJSON(t, "deposit response", DepositResponse("eip155:1337", payer, common.BigToHash(big.NewInt(1)), big.NewInt(10000), state, big.NewInt(1000)), v.Server.DepositResponse)

	// The decoder reads the npm responses back.
	var decoded SettlementResponse
	if err := json.Unmarshal(v.Server.VoucherResponse, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Extra.ChargedAmount.Int64() != 1000 || decoded.Extra.ChannelState.ChargedCumulativeAmount.Int64() != 2000 {
		t.Errorf("decoded voucher response extra %+v", decoded.Extra)
	}
	var verify struct {
		Extra ChannelState `json:"extra"`
	}
	if err := json.Unmarshal(v.Server.VoucherVerify, &verify); err != nil || verify.Extra.ChannelID != id || verify.Extra.Balance.Int64() != 10000 {
		t.Errorf("facilitator verify extra: %v %+v", err, verify.Extra)
	}

	var corrective x402.PaymentRequired
	if err := json.Unmarshal(v.Server.Corrective, &corrective); err != nil {
		t.Fatal(err)
	}
	voucher, _ := ParsePayload(json.RawMessage(v.Payloads["voucher"].PayloadJSON))
	state.ChargedCumulativeAmount = big.NewInt(2000)
	built := Corrective(offer.Requirements(big.NewInt(1000)), state, &VoucherState{SignedMaxClaimable: big.NewInt(2000), Signature: voucher.Voucher.Signature})
	sameJSON(t, "corrective accept", built, corrective.Accepts[0])
	if corrective.Error != string(x402.ReasonBatchCumulativeAmountMismatch) {
		t.Errorf("corrective error %q", corrective.Error)
	}
	// A client reads the corrective state back from the header form (numbers as json.Number).
	corrective.X402Version = x402.Version
	hdr, _ := x402.EncodeHeader(corrective)
	decodedReq, err := x402.DecodePaymentRequired(hdr, 0)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := ParseRequirementsExtra(decodedReq.Accepts[0].Extra)
	if err != nil {
		t.Fatal(err)
	}
	if extra.ChannelState.ChargedCumulativeAmount.Int64() != 2000 || !bytes.Equal(extra.VoucherState.Signature, voucher.Voucher.Signature) || extra.MinDeposit.Int64() != 10000 {
		t.Errorf("corrective extra %+v", extra)
	}
}

func TestVectorsServerSignatures(t *testing.T) {
	v := loadVectors(t)
	sep := separatorOf(t, "eip155:1337")
	authorizer := crypto.PubkeyToAddress(v.key(t, "receiverAuthorizer").PublicKey)
	claim, err := ParseClaimPayload(json.RawMessage(v.Server.ClaimPayload))
	if err != nil {
		t.Fatal(err)
	}
	if len(claim.Claims) != 2 {
		t.Fatalf("claims %d", len(claim.Claims))
	}
	if signer, err := evmsig.RecoverSigner(ClaimBatchOf(sep, claim.Claims).Digest(sep), claim.AuthorizerSignature); err != nil || signer != authorizer {
		t.Errorf("npm ClaimBatch signature recovers to %s, %v", signer.Hex(), err)
	}
	for i, c := range claim.Claims {
		want := c.Channel.PayerAuthorizer
		v := Voucher{ChannelID: c.Channel.ChannelID(sep), MaxClaimableAmount: c.MaxClaimableAmount}
		if signer, err := evmsig.RecoverSigner(v.Digest(sep), c.Signature); err != nil || signer != want {
			t.Errorf("claim %d voucher signature recovers to %s, %v", i, signer.Hex(), err)
		}
	}
	refund, err := ParseRefundSettlePayload(json.RawMessage(v.Server.RefundSettlement))
	if err != nil {
		t.Fatal(err)
	}
	msg := Refund{ChannelID: refund.Refund.Voucher.ChannelID, Nonce: refund.RefundNonce, Amount: refund.Refund.RefundAmount}
	if signer, err := evmsig.RecoverSigner(msg.Digest(sep), refund.RefundAuthorizerSignature); err != nil || signer != authorizer {
		t.Errorf("npm Refund signature recovers to %s, %v", signer.Hex(), err)
	}
	if signer, err := evmsig.RecoverSigner(ClaimBatchOf(sep, refund.Claims).Digest(sep), refund.ClaimAuthorizerSignature); err != nil || signer != authorizer {
		t.Errorf("npm refund ClaimBatch signature recovers to %s, %v", signer.Hex(), err)
	}
}

func compact(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// sameJSON compares two values by their JSON meaning, ignoring key order.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	norm := func(v any) any {
		raw, ok := v.(json.RawMessage)
		if !ok {
			var err error
			if raw, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	g, w := norm(got), norm(want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s\n got %s\nwant %s", what, gb, wb)
	}
}
