package evm

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/testusdc"
)

var walletAddr = common.HexToAddress("0x000000000000000000000000000000000000a11e")

// TestIsValidSignature asks a smart wallet (contracts/src/testing/SmartWallet.sol, which accepts
// what its owner's key signed), an account without code and a contract without the function.
func TestIsValidSignature(t *testing.T) {
	accts := devkeys.DevAccounts(3)
	owner, stranger := accts[1], accts[2]
	bin, err := os.ReadFile(filepath.Join("..", "..", "contracts", "artifacts", "SmartWallet.bin"))
	if err != nil {
		t.Fatal(err)
	}
	token := testusdc.NewTestUSDC()
	chain, err := devchain.Start(context.Background(), devchain.Config{
		ListenAddr: "127.0.0.1:0",
		Contracts: []devchain.GenesisContract{
			{Address: walletAddr, Deployer: owner.Address,
				InitCode: append(common.FromHex(strings.TrimSpace(string(bin))), common.LeftPadBytes(owner.Address.Bytes(), 32)...)},
			{Address: tokenAddr, Deployer: owner.Address, InitCode: append(testusdc.CreationCode(), token.PackConstructor(owner.Address)...)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	ctx := context.Background()
	c, err := Dial(ctx, chain.RPCURL(), big.NewInt(1337), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	digest := crypto.Keccak256Hash([]byte("payper"))
	sign := func(key devkeys.Account) []byte {
		sig, err := crypto.Sign(digest[:], key.Key)
		if err != nil {
			t.Fatal(err)
		}
		sig[64] += 27
		return sig
	}
	for name, tc := range map[string]struct {
		account common.Address
		sig     []byte
		want    bool
	}{
		"wallet, its owner's signature": {walletAddr, sign(owner), true},
		"wallet, a stranger's":          {walletAddr, sign(stranger), false},
		"wallet, garbage":               {walletAddr, bytes.Repeat([]byte{1}, 100), false},
		"account without code":          {owner.Address, sign(owner), false},
		"contract without the function": {tokenAddr, sign(owner), false},
	} {
		got, err := c.IsValidSignature(ctx, tc.account, digest, tc.sig)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", name, got, err, tc.want)
		}
	}

	chain.Close()
	if _, err := c.IsValidSignature(ctx, walletAddr, digest, sign(owner)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("chain gone: %v, want ErrUnavailable", err)
	}
}

// TestPackIsValidSignature matches the ABI encoder, for signatures of every padding.
func TestPackIsValidSignature(t *testing.T) {
	b32, _ := abi.NewType("bytes32", "", nil)
	bytesT, _ := abi.NewType("bytes", "", nil)
	args := abi.Arguments{{Type: b32}, {Type: bytesT}}
	digest := crypto.Keccak256Hash([]byte("payper"))
	for _, n := range []int{0, 1, 31, 32, 33, 65, 300} {
		sig := bytes.Repeat([]byte{0xab}, n)
		want, err := args.Pack([32]byte(digest), sig)
		if err != nil {
			t.Fatal(err)
		}
		if got := packIsValidSignature(digest, sig); !bytes.Equal(got, append(erc1271Selector[:], want...)) {
			t.Errorf("%d-byte signature: %x\nwant %x", n, got, want)
		}
	}
}
