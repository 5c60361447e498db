package batch

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/x402"
)

// TestX402KeepsExtra: a batch response written through the generic x402 type still carries the
// channel state a stock client reads.
func TestX402KeepsExtra(t *testing.T) {
	state := ChannelState{ChannelID: common.HexToHash("0x01"), Balance: big.NewInt(10_000), TotalClaimed: big.NewInt(0),
		RefundNonce: big.NewInt(0), ChargedCumulativeAmount: big.NewInt(3000)}
	r := VoucherResponse("eip155:1337", common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"), state, big.NewInt(1000))
	h, err := x402.EncodeHeader(r.X402())
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSettlementResponse(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if back.Extra == nil || back.Extra.ChannelState == nil || back.Extra.ChannelState.ChargedCumulativeAmount.Int64() != 3000 ||
		back.Extra.ChargedAmount.Int64() != 1000 || !back.Success {
		t.Fatalf("round trip lost the channel state: %+v", back.Extra)
	}
}
