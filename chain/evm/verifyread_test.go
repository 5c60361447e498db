package evm

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
)

// BenchmarkVerifyReads measures the chain reads of an exact payment's verification on the dev
// chain over loopback HTTP: whether the authorization's nonce is used, and the payer's balance.
func BenchmarkVerifyReads(b *testing.B) {
	chain := startChain(b)
	c, err := Dial(context.Background(), chain.RPCURL(), big.NewInt(1337), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payer := devkeys.DevAccounts(2)[1].Address
	nonce := common.Hash{0x17}
	ctx := context.Background()
	b.Run("two calls", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.AuthorizationState(ctx, tokenAddr, payer, nonce); err != nil {
				b.Fatal(err)
			}
			if _, err := c.BalanceOf(ctx, tokenAddr, payer); err != nil {
				b.Fatal(err)
			}
		}
	})
}
