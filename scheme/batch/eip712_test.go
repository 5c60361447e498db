package batch

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The hand-rolled EIP-712 hashing is checked against go-ethereum's generic typed-data code.

var domainFields = []apitypes.Type{
	{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
	{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
}

func genericDigest(t *testing.T, types apitypes.Types, primary string, domain apitypes.TypedDataDomain, msg apitypes.TypedDataMessage) common.Hash {
	t.Helper()
	if _, ok := types["EIP712Domain"]; !ok {
		types["EIP712Domain"] = domainFields
	}
	h, _, err := apitypes.TypedDataAndHash(apitypes.TypedData{Types: types, PrimaryType: primary, Domain: domain, Message: msg})
	if err != nil {
		t.Fatalf("%s: %v", primary, err)
	}
	return common.BytesToHash(h)
}

func settlementTypedDomain(chainID int64) apitypes.TypedDataDomain {
	return apitypes.TypedDataDomain{Name: DomainName, Version: DomainVersion, ChainId: math.NewHexOrDecimal256(chainID), VerifyingContract: SettlementAddress.Hex()}
}

var (
	addrA   = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	addrB   = common.HexToAddress("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
	addrC   = common.HexToAddress("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
	addrT   = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	maxU128 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
)

func TestChannelIDMatchesGenericTypedData(t *testing.T) {
	for _, c := range []ChannelConfig{
		{Payer: addrA, PayerAuthorizer: addrA, Receiver: addrC, ReceiverAuthorizer: addrB, Token: addrT, WithdrawDelay: 900},
		{Payer: addrA, Receiver: addrC, ReceiverAuthorizer: addrB, Token: addrT, WithdrawDelay: maxUint40, Salt: crypto.Keccak256Hash([]byte("lane 7"))},
	} {
		types := apitypes.Types{"ChannelConfig": {
			{Name: "payer", Type: "address"}, {Name: "payerAuthorizer", Type: "address"}, {Name: "receiver", Type: "address"},
			{Name: "receiverAuthorizer", Type: "address"}, {Name: "token", Type: "address"}, {Name: "withdrawDelay", Type: "uint40"},
			{Name: "salt", Type: "bytes32"},
		}}
		msg := apitypes.TypedDataMessage{
			"payer": c.Payer.Hex(), "payerAuthorizer": c.PayerAuthorizer.Hex(), "receiver": c.Receiver.Hex(),
			"receiverAuthorizer": c.ReceiverAuthorizer.Hex(), "token": c.Token.Hex(),
			"withdrawDelay": new(big.Int).SetUint64(c.WithdrawDelay).String(), "salt": c.Salt.Hex(),
		}
		want := genericDigest(t, types, "ChannelConfig", settlementTypedDomain(8453), msg)
		if got := c.ChannelID(SettlementDomain(big.NewInt(8453)).Separator()); got != want {
			t.Fatalf("channel id %s, generic %s", got.Hex(), want.Hex())
		}
	}
}

func TestVoucherRefundClaimDigestsMatchGenericTypedData(t *testing.T) {
	sep := SettlementDomain(big.NewInt(1337)).Separator()
	id := crypto.Keccak256Hash([]byte("channel"))
	v := Voucher{ChannelID: id, MaxClaimableAmount: maxU128}
	want := genericDigest(t, apitypes.Types{"Voucher": {{Name: "channelId", Type: "bytes32"}, {Name: "maxClaimableAmount", Type: "uint128"}}},
		"Voucher", settlementTypedDomain(1337), apitypes.TypedDataMessage{"channelId": id.Hex(), "maxClaimableAmount": maxU128.String()})
	if got := v.Digest(sep); got != want {
		t.Errorf("voucher digest %s, generic %s", got.Hex(), want.Hex())
	}

	r := Refund{ChannelID: id, Nonce: new(big.Int).Lsh(big.NewInt(1), 200), Amount: big.NewInt(3000)}
	want = genericDigest(t, apitypes.Types{"Refund": {{Name: "channelId", Type: "bytes32"}, {Name: "nonce", Type: "uint256"}, {Name: "amount", Type: "uint128"}}},
		"Refund", settlementTypedDomain(1337), apitypes.TypedDataMessage{"channelId": id.Hex(), "nonce": r.Nonce.String(), "amount": "3000"})
	if got := r.Digest(sep); got != want {
		t.Errorf("refund digest %s, generic %s", got.Hex(), want.Hex())
	}

	for _, n := range []int{0, 1, 3} {
		batch := make(ClaimBatch, n)
		rows := make([]any, n)
		for i := range batch {
			batch[i] = ClaimEntry{ChannelID: crypto.Keccak256Hash([]byte{byte(i)}), MaxClaimableAmount: big.NewInt(int64(1000 * (i + 1))), TotalClaimed: big.NewInt(int64(900 * i))}
			rows[i] = map[string]any{"channelId": batch[i].ChannelID.Hex(), "maxClaimableAmount": batch[i].MaxClaimableAmount.String(), "totalClaimed": batch[i].TotalClaimed.String()}
		}
		types := apitypes.Types{
			"ClaimBatch": {{Name: "claims", Type: "ClaimEntry[]"}},
			"ClaimEntry": {{Name: "channelId", Type: "bytes32"}, {Name: "maxClaimableAmount", Type: "uint128"}, {Name: "totalClaimed", Type: "uint128"}},
		}
		want := genericDigest(t, types, "ClaimBatch", settlementTypedDomain(1337), apitypes.TypedDataMessage{"claims": rows})
		if got := batch.Digest(sep); got != want {
			t.Errorf("claim batch of %d: digest %s, generic %s", n, got.Hex(), want.Hex())
		}
	}
}

func TestDepositDigestsMatchGenericTypedData(t *testing.T) {
	id := crypto.Keccak256Hash([]byte("channel"))
	salt := crypto.Keccak256Hash([]byte("salt"))
	a := ReceiveAuthorization{From: addrA, To: ERC3009CollectorAddress, Value: big.NewInt(10000), ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(1_800_000_300), Nonce: DepositNonce(id, salt)}
	types := apitypes.Types{"ReceiveWithAuthorization": {
		{Name: "from", Type: "address"}, {Name: "to", Type: "address"}, {Name: "value", Type: "uint256"},
		{Name: "validAfter", Type: "uint256"}, {Name: "validBefore", Type: "uint256"}, {Name: "nonce", Type: "bytes32"},
	}}
	domain := apitypes.TypedDataDomain{Name: "USD Coin", Version: "2", ChainId: math.NewHexOrDecimal256(1337), VerifyingContract: addrT.Hex()}
	want := genericDigest(t, types, "ReceiveWithAuthorization", domain, apitypes.TypedDataMessage{
		"from": addrA.Hex(), "to": ERC3009CollectorAddress.Hex(), "value": "10000", "validAfter": "0", "validBefore": "1800000300", "nonce": a.Nonce.Hex(),
	})
	tokenSep := Domain{Name: "USD Coin", Version: "2", ChainID: big.NewInt(1337), VerifyingContract: addrT}.Separator()
	if got := a.Digest(tokenSep); got != want {
		t.Errorf("receive authorization digest %s, generic %s", got.Hex(), want.Hex())
	}
	// abi.encode(bytes32, bytes32) is the two words back to back.
	if got := DepositNonce(id, salt); !bytes.Equal(got[:], crypto.Keccak256(append(id.Bytes(), salt.Bytes()...))) {
		t.Errorf("deposit nonce %s", got.Hex())
	}

	p := Permit2Transfer{Token: addrT, Amount: big.NewInt(10000), Spender: Permit2CollectorAddress, Nonce: big.NewInt(77), Deadline: big.NewInt(1_800_000_300), ChannelID: id}
	ptypes := apitypes.Types{
		"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
		"PermitWitnessTransferFrom": {
			{Name: "permitted", Type: "TokenPermissions"}, {Name: "spender", Type: "address"}, {Name: "nonce", Type: "uint256"},
			{Name: "deadline", Type: "uint256"}, {Name: "witness", Type: "DepositWitness"},
		},
		"TokenPermissions": {{Name: "token", Type: "address"}, {Name: "amount", Type: "uint256"}},
		"DepositWitness":   {{Name: "channelId", Type: "bytes32"}},
	}
	pdomain := apitypes.TypedDataDomain{Name: "Permit2", ChainId: math.NewHexOrDecimal256(1337), VerifyingContract: Permit2Address.Hex()}
	want = genericDigest(t, ptypes, "PermitWitnessTransferFrom", pdomain, apitypes.TypedDataMessage{
		"permitted": map[string]any{"token": addrT.Hex(), "amount": "10000"}, "spender": Permit2CollectorAddress.Hex(),
		"nonce": "77", "deadline": "1800000300", "witness": map[string]any{"channelId": id.Hex()},
	})
	if got := p.Digest(Permit2Separator(big.NewInt(1337))); got != want {
		t.Errorf("permit2 digest %s, generic %s", got.Hex(), want.Hex())
	}
}
