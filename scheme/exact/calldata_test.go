package exact

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/testusdc"
)

// TestTransferCalldataMatchesTheTokenABI: both transferWithAuthorization forms pack exactly as the
// token's generated binding does, for either way of writing v.
func TestTransferCalldataMatchesTheTokenABI(t *testing.T) {
	token := testusdc.NewTestUSDC()
	from, to := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	value, after, before := big.NewInt(1000), big.NewInt(0), big.NewInt(1<<40)
	nonce := common.HexToHash("0xabcdef")
	sig := bytes.Repeat([]byte{7}, 65)
	for _, v := range []byte{0, 1, 27, 28} {
		sig[64] = v
		got, err := TransferWithAuthorizationData(from, to, value, after, before, nonce, sig)
		if err != nil {
			t.Fatal(err)
		}
		var r, s [32]byte
		copy(r[:], sig[:32])
		copy(s[:], sig[32:64])
		wantV := v
		if wantV < 27 {
			wantV += 27
		}
		want, err := token.TryPackTransferWithAuthorization(from, to, value, after, before, nonce, wantV, r, s)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("v=%d: (v, r, s) calldata differs from the binding's (%v)", v, err)
		}
	}
	long := bytes.Repeat([]byte{9}, 97)
	got, err := TransferWithAuthorizationBytesData(from, to, value, after, before, nonce, long)
	want, werr := token.TryPackTransferWithAuthorizationSig(from, to, value, after, before, nonce, long)
	if err != nil || werr != nil || !bytes.Equal(got, want) {
		t.Fatalf("bytes calldata differs from the binding's (%v, %v)", err, werr)
	}
	if _, err := TransferWithAuthorizationData(from, to, value, after, before, nonce, long); err == nil {
		t.Fatal("a signature that is not 65 bytes was packed in the (v, r, s) form")
	}
}

func TestAuthorizationUsed(t *testing.T) {
	token, payer, nonce := common.HexToAddress("0x0a"), common.HexToAddress("0x0b"), common.HexToHash("0x0c")
	used := &types.Log{Address: token, Topics: []common.Hash{authorizationUsedTopic, common.BytesToHash(payer.Bytes()), nonce}}
	ok := &types.Receipt{Status: types.ReceiptStatusSuccessful, Logs: []*types.Log{used}}
	if !AuthorizationUsed(ok, token, payer, nonce) {
		t.Fatal("the AuthorizationUsed log was not seen")
	}
	if AuthorizationUsed(ok, token, payer, common.HexToHash("0x0d")) || AuthorizationUsed(ok, common.HexToAddress("0x0e"), payer, nonce) {
		t.Fatal("another nonce's or token's log was taken for this one")
	}
	if AuthorizationUsed(&types.Receipt{Status: types.ReceiptStatusFailed, Logs: ok.Logs}, token, payer, nonce) || AuthorizationUsed(nil, token, payer, nonce) {
		t.Fatal("a failed transaction counted as a transfer")
	}
}
