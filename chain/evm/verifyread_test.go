package evm

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/scheme/exact"
)

// readsApart is the client seen only through exact.ChainReader: verification then reads the
// nonce state and the balance in two calls, as it did before PaymentState.
type readsApart struct{ exact.ChainReader }

// BenchmarkVerify measures an exact payment's verification on the dev chain over loopback HTTP:
// its chain reads in one call (Multicall3), in one JSON-RPC batch (a chain without Multicall3),
// and in two calls, signature recovery included.
func BenchmarkVerify(b *testing.B) {
	chain := startChain(b)
	c, err := Dial(context.Background(), chain.RPCURL(), big.NewInt(1337), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	batching, err := Dial(context.Background(), chain.RPCURL(), big.NewInt(1337), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer batching.Close()
	batching.noMulticall.Store(true) // as on a chain without Multicall3
	offer := exact.Offer{Network: "eip155:1337", Asset: tokenAddr, Name: "USD Coin", Version: "2", PayTo: common.Address{0xd3}, MaxTimeoutSeconds: 60}
	req := offer.Requirements(big.NewInt(1))
	p, err := (&exact.Signer{Key: devkeys.DevAccounts(2)[1].Key}).CreatePayload(req, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		chain exact.ChainReader
	}{{"two calls", readsApart{c}}, {"one call", c}, {"one batch", batching}} {
		b.Run(bc.name, func(b *testing.B) {
			v := &exact.Verifier{Chain: bc.chain}
			for b.Loop() {
				if _, err := v.Verify(context.Background(), req, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
