package escrow_test

import (
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/contracts/testusdc"
)

// The EIP-712 hashing below is written out by hand from EIP-712 and the x402 batch-settlement
// binding, independently of the contract, so a mistake on either side fails a test. It is
// cross-checked against go-ethereum's generic typed-data implementation too.

const (
	domainType        = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	channelConfigType = "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
	voucherType       = "Voucher(bytes32 channelId,uint128 maxClaimableAmount)"
	refundType        = "Refund(bytes32 channelId,uint256 nonce,uint128 amount)"
	claimEntryType    = "ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
	claimBatchType    = "ClaimBatch(ClaimEntry[] claims)" + claimEntryType
	receiveAuthType   = "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)

func word(n *big.Int) []byte              { return math.U256Bytes(new(big.Int).Set(n)) }
func addressWord(a common.Address) []byte { return common.LeftPadBytes(a.Bytes(), 32) }
func typeHash(s string) []byte            { return crypto.Keccak256([]byte(s)) }

func domainSeparator(name, version string, chainID *big.Int, contract common.Address) common.Hash {
	return crypto.Keccak256Hash(typeHash(domainType), crypto.Keccak256([]byte(name)), crypto.Keccak256([]byte(version)),
		word(chainID), addressWord(contract))
}

func settlementDomain(chainID *big.Int, contract common.Address) common.Hash {
	return domainSeparator(escrow.DomainName, escrow.DomainVersion, chainID, contract)
}

func tokenDomain(chainID *big.Int, contract common.Address) common.Hash {
	return domainSeparator(testusdc.Name, testusdc.EIP712Version, chainID, contract)
}

func typedDataDigest(domain common.Hash, structHash []byte) common.Hash {
	return crypto.Keccak256Hash([]byte{0x19, 0x01}, domain[:], structHash)
}

func channelID(domain common.Hash, c escrow.ChannelConfig) common.Hash {
	structHash := crypto.Keccak256(typeHash(channelConfigType),
		addressWord(c.Payer), addressWord(c.PayerAuthorizer), addressWord(c.Receiver), addressWord(c.ReceiverAuthorizer),
		addressWord(c.Token), word(c.WithdrawDelay), c.Salt[:])
	return typedDataDigest(domain, structHash)
}

func voucherDigest(domain, id common.Hash, max *big.Int) common.Hash {
	return typedDataDigest(domain, crypto.Keccak256(typeHash(voucherType), id[:], word(max)))
}

func refundDigest(domain, id common.Hash, nonce, amount *big.Int) common.Hash {
	return typedDataDigest(domain, crypto.Keccak256(typeHash(refundType), id[:], word(nonce), word(amount)))
}

type claimEntry struct {
	id         common.Hash
	max, total *big.Int
}

func claimBatchDigest(domain common.Hash, entries []claimEntry) common.Hash {
	var concatenated []byte
	for _, e := range entries {
		concatenated = append(concatenated, crypto.Keccak256(typeHash(claimEntryType), e.id[:], word(e.max), word(e.total))...)
	}
	return typedDataDigest(domain, crypto.Keccak256(typeHash(claimBatchType), crypto.Keccak256(concatenated)))
}

func receiveDigest(domain common.Hash, from, to common.Address, value, validAfter, validBefore *big.Int, nonce common.Hash) common.Hash {
	return typedDataDigest(domain, crypto.Keccak256(typeHash(receiveAuthType),
		addressWord(from), addressWord(to), word(value), word(validAfter), word(validBefore), nonce[:]))
}

// depositNonce is the ERC-3009 nonce the collector requires: keccak256(abi.encode(channelId, salt)).
func depositNonce(id common.Hash, salt *big.Int) common.Hash {
	return crypto.Keccak256Hash(id[:], word(salt))
}

// sign returns a 65-byte r‖s‖v signature with v in {27, 28}.
func sign(t *testing.T, key *ecdsa.PrivateKey, digest common.Hash) []byte {
	t.Helper()
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return sig
}

// highSTwin is the other valid ECDSA signature of the same digest: s' = n - s with v flipped.
// Plain ecrecover accepts it; the contract must not.
func highSTwin(sig []byte) []byte {
	twin := make([]byte, 65)
	copy(twin, sig[:32])
	highS := new(big.Int).Sub(crypto.S256().Params().N, new(big.Int).SetBytes(sig[32:64]))
	highS.FillBytes(twin[32:64])
	twin[64] = 27 + 28 - sig[64]
	return twin
}

func sampleConfig() escrow.ChannelConfig {
	return escrow.ChannelConfig{
		Payer: payer, PayerAuthorizer: session, Receiver: receiver, ReceiverAuthorizer: receiverAuth,
		Token: common.HexToAddress("0x00000000000000000000000000000000000070c3"), WithdrawDelay: big.NewInt(86_400),
		Salt: [32]byte{0: 0xab, 31: 7},
	}
}

// TestDigestsMatchTypedData checks the hand-written hashing against go-ethereum's generic EIP-712
// implementation, including the nested struct array of ClaimBatch.
func TestDigestsMatchTypedData(t *testing.T) {
	chainID := big.NewInt(1337)
	domain := settlementDomain(chainID, escrow.BatchSettlementAddress)
	c := sampleConfig()
	id := channelID(domain, c)
	typedDomain := apitypes.TypedDataDomain{
		Name: escrow.DomainName, Version: escrow.DomainVersion,
		ChainId: math.NewHexOrDecimal256(1337), VerifyingContract: escrow.BatchSettlementAddress.Hex(),
	}
	domainFields := []apitypes.Type{
		{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
		{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
	}
	entryFields := []apitypes.Type{{Name: "channelId", Type: "bytes32"}, {Name: "maxClaimableAmount", Type: "uint128"}, {Name: "totalClaimed", Type: "uint128"}}
	cases := []struct {
		name  string
		typed apitypes.TypedData
		want  common.Hash
	}{
		{"ChannelConfig", apitypes.TypedData{
			Types: apitypes.Types{"EIP712Domain": domainFields, "ChannelConfig": {
				{Name: "payer", Type: "address"}, {Name: "payerAuthorizer", Type: "address"},
				{Name: "receiver", Type: "address"}, {Name: "receiverAuthorizer", Type: "address"},
				{Name: "token", Type: "address"}, {Name: "withdrawDelay", Type: "uint40"}, {Name: "salt", Type: "bytes32"},
			}},
			PrimaryType: "ChannelConfig", Domain: typedDomain,
			Message: apitypes.TypedDataMessage{
				"payer": c.Payer.Hex(), "payerAuthorizer": c.PayerAuthorizer.Hex(), "receiver": c.Receiver.Hex(),
				"receiverAuthorizer": c.ReceiverAuthorizer.Hex(), "token": c.Token.Hex(),
				"withdrawDelay": c.WithdrawDelay.String(), "salt": c.Salt[:],
			},
		}, id},
		{"Voucher", apitypes.TypedData{
			Types:       apitypes.Types{"EIP712Domain": domainFields, "Voucher": {{Name: "channelId", Type: "bytes32"}, {Name: "maxClaimableAmount", Type: "uint128"}}},
			PrimaryType: "Voucher", Domain: typedDomain,
			Message: apitypes.TypedDataMessage{"channelId": id[:], "maxClaimableAmount": "123456"},
		}, voucherDigest(domain, id, big.NewInt(123456))},
		{"Refund", apitypes.TypedData{
			Types:       apitypes.Types{"EIP712Domain": domainFields, "Refund": {{Name: "channelId", Type: "bytes32"}, {Name: "nonce", Type: "uint256"}, {Name: "amount", Type: "uint128"}}},
			PrimaryType: "Refund", Domain: typedDomain,
			Message: apitypes.TypedDataMessage{"channelId": id[:], "nonce": "3", "amount": "5000"},
		}, refundDigest(domain, id, big.NewInt(3), big.NewInt(5000))},
		{"ClaimBatch", apitypes.TypedData{
			Types:       apitypes.Types{"EIP712Domain": domainFields, "ClaimBatch": {{Name: "claims", Type: "ClaimEntry[]"}}, "ClaimEntry": entryFields},
			PrimaryType: "ClaimBatch", Domain: typedDomain,
			Message: apitypes.TypedDataMessage{"claims": []any{
				map[string]any{"channelId": id[:], "maxClaimableAmount": "9000", "totalClaimed": "8000"},
				map[string]any{"channelId": common.Hash{1}.Bytes(), "maxClaimableAmount": "1", "totalClaimed": "1"},
			}},
		}, claimBatchDigest(domain, []claimEntry{{id, big.NewInt(9000), big.NewInt(8000)}, {common.Hash{1}, big.NewInt(1), big.NewInt(1)}})},
	}
	for _, tc := range cases {
		got, _, err := apitypes.TypedDataAndHash(tc.typed)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if common.BytesToHash(got) != tc.want {
			t.Errorf("%s: typed data gives %x, hand-written hashing %s", tc.name, got, tc.want)
		}
	}
}

// TestContractHashing compares the contract's type hashes, domain and digest views with the
// hand-written hashing.
func TestContractHashing(t *testing.T) {
	e := newEnv(t)
	for typ, got := range map[string][32]byte{
		channelConfigType: call(e, e.settlement, bs.PackCHANNELCONFIGTYPEHASH(), bs.UnpackCHANNELCONFIGTYPEHASH),
		voucherType:       call(e, e.settlement, bs.PackVOUCHERTYPEHASH(), bs.UnpackVOUCHERTYPEHASH),
		refundType:        call(e, e.settlement, bs.PackREFUNDTYPEHASH(), bs.UnpackREFUNDTYPEHASH),
		claimEntryType:    call(e, e.settlement, bs.PackCLAIMENTRYTYPEHASH(), bs.UnpackCLAIMENTRYTYPEHASH),
		claimBatchType:    call(e, e.settlement, bs.PackCLAIMBATCHTYPEHASH(), bs.UnpackCLAIMBATCHTYPEHASH),
	} {
		if want := crypto.Keccak256Hash([]byte(typ)); got != want {
			t.Errorf("type hash of %s is %x, want %x", typ, got, want)
		}
	}
	if got := call(e, e.settlement, bs.PackMINWITHDRAWDELAY(), bs.UnpackMINWITHDRAWDELAY); got.Int64() != escrow.MinWithdrawDelay {
		t.Errorf("MIN_WITHDRAW_DELAY %s", got)
	}
	if got := call(e, e.settlement, bs.PackMAXWITHDRAWDELAY(), bs.UnpackMAXWITHDRAWDELAY); got.Int64() != escrow.MaxWithdrawDelay {
		t.Errorf("MAX_WITHDRAW_DELAY %s", got)
	}
	d := call(e, e.settlement, bs.PackEip712Domain(), bs.UnpackEip712Domain)
	if d.Name != escrow.DomainName || d.Version != escrow.DomainVersion || d.ChainId.Cmp(e.chainID) != 0 || d.VerifyingContract != e.settlement {
		t.Errorf("eip712Domain %+v", d)
	}

	c := sampleConfig()
	id := channelID(e.domain(), c)
	if got := call(e, e.settlement, bs.PackGetChannelId(c), bs.UnpackGetChannelId); got != id {
		t.Fatalf("getChannelId %x, independently computed %s", got, id)
	}
	if got := call(e, e.settlement, bs.PackGetVoucherDigest(id, big.NewInt(77)), bs.UnpackGetVoucherDigest); got != voucherDigest(e.domain(), id, big.NewInt(77)) {
		t.Errorf("getVoucherDigest %x", got)
	}
	if got := call(e, e.settlement, bs.PackGetRefundDigest(id, big.NewInt(2), big.NewInt(5)), bs.UnpackGetRefundDigest); got != refundDigest(e.domain(), id, big.NewInt(2), big.NewInt(5)) {
		t.Errorf("getRefundDigest %x", got)
	}
	other := c
	other.Salt = [32]byte{9}
	rows := []escrow.VoucherClaim{e.row(payerKey, c, 10, 8), e.row(payerKey, other, 4, 4)}
	if got := call(e, e.settlement, bs.PackGetClaimBatchDigest(rows), bs.UnpackGetClaimBatchDigest); got != e.claimBatchDigest(rows) {
		t.Errorf("getClaimBatchDigest %x, want %s", got, e.claimBatchDigest(rows))
	}
	if got := call(e, e.settlement, bs.PackGetClaimBatchDigest(nil), bs.UnpackGetClaimBatchDigest); got != claimBatchDigest(e.domain(), nil) {
		t.Errorf("getClaimBatchDigest of no rows %x", got)
	}

	// Every config field is part of the id.
	seen := map[common.Hash]bool{id: true}
	for i, mutate := range []func(*escrow.ChannelConfig){
		func(c *escrow.ChannelConfig) { c.Payer = stranger },
		func(c *escrow.ChannelConfig) { c.PayerAuthorizer = stranger },
		func(c *escrow.ChannelConfig) { c.Receiver = stranger },
		func(c *escrow.ChannelConfig) { c.ReceiverAuthorizer = stranger },
		func(c *escrow.ChannelConfig) { c.Token = stranger },
		func(c *escrow.ChannelConfig) { c.WithdrawDelay = big.NewInt(86_401) },
		func(c *escrow.ChannelConfig) { c.Salt[5] = 1 },
	} {
		m := sampleConfig()
		mutate(&m)
		got := call(e, e.settlement, bs.PackGetChannelId(m), bs.UnpackGetChannelId)
		if seen[got] || got != channelID(e.domain(), m) {
			t.Errorf("field %d: id %x repeats or differs from the hand-computed one", i, got)
		}
		seen[got] = true
	}
}

// TestHighSTwinRecoversSameSigner makes sure the twin used in the rejection tests is a real
// malleated signature, one that plain ecrecover maps to the same signer.
func TestHighSTwinRecoversSameSigner(t *testing.T) {
	digest := crypto.Keccak256Hash([]byte("twin"))
	twin := highSTwin(sign(t, payerKey, digest))
	raw := append([]byte(nil), twin...)
	raw[64] -= 27
	pub, err := crypto.Ecrecover(digest[:], raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]); got != payer {
		t.Fatalf("twin recovers %s, want %s", got, payer)
	}
}
