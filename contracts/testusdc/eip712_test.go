package testusdc_test

import (
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The EIP-712 hashing below is written out by hand from EIP-712 and EIP-3009, independently of
// the contract, so a mistake in either shows up as a failing signature check.

const authorizationFields = "(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"

const (
	transferType = "TransferWithAuthorization"
	receiveType  = "ReceiveWithAuthorization"
)

type authorization struct {
	from, to                       common.Address
	value, validAfter, validBefore *big.Int
	nonce                          [32]byte
}

func word(n *big.Int) []byte              { return math.U256Bytes(new(big.Int).Set(n)) }
func addressWord(a common.Address) []byte { return common.LeftPadBytes(a.Bytes(), 32) }

func domainSeparator(chainID *big.Int, contract common.Address) common.Hash {
	return crypto.Keccak256Hash(
		crypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")),
		crypto.Keccak256([]byte("USD Coin")),
		crypto.Keccak256([]byte("2")),
		word(chainID),
		addressWord(contract),
	)
}

func typedDataDigest(domain common.Hash, structHash []byte) common.Hash {
	return crypto.Keccak256Hash([]byte{0x19, 0x01}, domain[:], structHash)
}

// digest is the EIP-712 hash of a as primaryType (transferType or receiveType).
func (a authorization) digest(domain common.Hash, primaryType string) common.Hash {
	structHash := crypto.Keccak256(
		crypto.Keccak256([]byte(primaryType+authorizationFields)),
		addressWord(a.from), addressWord(a.to), word(a.value), word(a.validAfter), word(a.validBefore), a.nonce[:],
	)
	return typedDataDigest(domain, structHash)
}

func cancelDigest(domain common.Hash, authorizer common.Address, nonce [32]byte) common.Hash {
	structHash := crypto.Keccak256(
		crypto.Keccak256([]byte("CancelAuthorization(address authorizer,bytes32 nonce)")),
		addressWord(authorizer), nonce[:],
	)
	return typedDataDigest(domain, structHash)
}

// signature is a 65-byte r‖s‖v signature with v in {27, 28}.
type signature []byte

func sign(t *testing.T, key *ecdsa.PrivateKey, digest common.Hash) signature {
	t.Helper()
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return sig
}

func (s signature) vrs() (v uint8, r, ss [32]byte) {
	copy(r[:], s[:32])
	copy(ss[:], s[32:64])
	return s[64], r, ss
}

// highSTwin is the other valid ECDSA signature of the same digest: s' = n - s with v flipped.
// ecrecover accepts it; EIP-2 style checks must not.
func (s signature) highSTwin() signature {
	twin := make(signature, 65)
	copy(twin, s[:32])
	highS := new(big.Int).Sub(crypto.S256().Params().N, new(big.Int).SetBytes(s[32:64]))
	highS.FillBytes(twin[32:64])
	twin[64] = 27 + 28 - s[64] // flips 27 and 28
	return twin
}

// TestDigestMatchesTypedData checks the hand-written hashing against go-ethereum's generic
// EIP-712 implementation.
func TestDigestMatchesTypedData(t *testing.T) {
	a := authorization{
		from: payer, to: payee, value: usdc(150),
		validAfter: big.NewInt(0), validBefore: big.NewInt(1_900_000_000),
		nonce: [32]byte{1, 2, 3},
	}
	contract := common.HexToAddress("0x0000000000000000000000000000000000c0ffee")
	typed := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
			},
			transferType: {
				{Name: "from", Type: "address"}, {Name: "to", Type: "address"},
				{Name: "value", Type: "uint256"}, {Name: "validAfter", Type: "uint256"},
				{Name: "validBefore", Type: "uint256"}, {Name: "nonce", Type: "bytes32"},
			},
		},
		PrimaryType: transferType,
		Domain: apitypes.TypedDataDomain{
			Name: "USD Coin", Version: "2",
			ChainId: math.NewHexOrDecimal256(1337), VerifyingContract: contract.Hex(),
		},
		Message: apitypes.TypedDataMessage{
			"from": a.from.Hex(), "to": a.to.Hex(), "value": a.value.String(),
			"validAfter": a.validAfter.String(), "validBefore": a.validBefore.String(),
			"nonce": a.nonce[:],
		},
	}
	want, _, err := apitypes.TypedDataAndHash(typed)
	if err != nil {
		t.Fatal(err)
	}
	got := a.digest(domainSeparator(big.NewInt(1337), contract), transferType)
	if got != common.BytesToHash(want) {
		t.Fatalf("digest %s, typed data gives %x", got, want)
	}
}

// TestHighSTwinRecoversSameSigner makes sure the twin used in the rejection tests is a real
// malleated signature, one that plain ecrecover maps to the same signer.
func TestHighSTwinRecoversSameSigner(t *testing.T) {
	digest := crypto.Keccak256Hash([]byte("twin"))
	twin := sign(t, payerKey, digest).highSTwin()
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
