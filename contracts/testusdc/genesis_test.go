package testusdc_test

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/testusdc"
)

// TestRuntimeCodeInGenesis places the runtime code, as a deployment left it, at another address
// in a new chain's genesis, with balances written straight into storage, the way the embedded
// dev chain builds its genesis. Nothing may depend on the constructor's address or storage.
func TestRuntimeCodeInGenesis(t *testing.T) {
	source := newChain(t, nil)
	source.deploy()
	code, err := source.client.CodeAt(t.Context(), source.address, nil)
	if err != nil || len(code) == 0 {
		t.Fatalf("runtime code: %d bytes, %v", len(code), err)
	}

	placed := common.HexToAddress("0x00000000000000000000000000000000005eed01")
	c := newChain(t, types.GenesisAlloc{placed: {
		Code: code,
		Storage: map[common.Hash]common.Hash{
			testusdc.BalanceSlot(payer): common.BigToHash(usdc(500)),
			testusdc.TotalSupplySlot:    common.BigToHash(usdc(500)),
		},
	}})
	c.bind(placed)
	c.sim.Commit() // leave the genesis timestamp 0 behind

	if got := read(c, c.token.PackName(), c.token.UnpackName); got != "USD Coin" {
		t.Errorf("name %q", got)
	}
	if got := read(c, c.token.PackSymbol(), c.token.UnpackSymbol); got != "USDC" {
		t.Errorf("symbol %q", got)
	}
	if got := read(c, c.token.PackMinter(), c.token.UnpackMinter); got != minter {
		t.Errorf("minter %s", got)
	}
	if got := read(c, c.token.PackDOMAINSEPARATOR(), c.token.UnpackDOMAINSEPARATOR); got != c.domain() {
		t.Fatalf("DOMAIN_SEPARATOR %x, want %x for %s", got, c.domain(), placed)
	}
	if d := read(c, c.token.PackEip712Domain(), c.token.UnpackEip712Domain); d.VerifyingContract != placed {
		t.Fatalf("eip712Domain verifyingContract %s, want %s", d.VerifyingContract, placed)
	}
	wantBalance(t, c, payer, usdc(500))

	a := authorize(c, usdc(120), 1)
	c.mustSucceed(relayerKey, transferVRS(c, a, sign(t, payerKey, a.digest(c.domain(), transferType))))
	wantBalance(t, c, payer, usdc(380))
	wantBalance(t, c, payee, usdc(120))

	c.mint(payee, big.NewInt(1))
	wantBalance(t, c, payee, new(big.Int).Add(usdc(120), big.NewInt(1)))
}
