package evm

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/settle/txn"
)

// TestLookupTx: a transaction the node holds but cannot mine yet (a nonce gap) is pending; once
// the gap is filled both are mined; a hash the node never saw is unknown.
func TestLookupTx(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	c, err := Dial(ctx, chain.RPCURL(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := devkeys.DevAccounts(3)[2]
	nonce, err := c.eps[0].eth.PendingNonceAt(ctx, from.Address)
	if err != nil {
		t.Fatal(err)
	}
	transfer := func(nonce uint64) *types.Transaction {
		tx := types.MustSignNewTx(from.Key, types.LatestSignerForChainID(c.ChainID()), &types.DynamicFeeTx{
			ChainID: c.ChainID(), Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e10),
			Gas: 21_000, To: &from.Address, Value: big.NewInt(1),
		})
		if err := c.eps[0].eth.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		return tx
	}

	late := transfer(nonce + 1)
	if st, err := c.LookupTx(ctx, late.Hash()); err != nil || !st.Pending || st.Receipt != nil {
		t.Fatalf("transaction behind a nonce gap: %+v, %v; want pending", st, err)
	}
	early := transfer(nonce)
	if _, err := c.WaitMined(ctx, late.Hash()); err != nil {
		t.Fatal(err)
	}
	for _, tx := range []*types.Transaction{early, late} {
		st, err := c.LookupTx(ctx, tx.Hash())
		if err != nil || st.Pending || st.Receipt == nil || st.Receipt.TxHash != tx.Hash() {
			t.Fatalf("mined transaction: %+v, %v; want its receipt", st, err)
		}
	}
	if st, err := c.LookupTx(ctx, common.HexToHash("0xdead")); err != nil || st != (txn.Status{}) {
		t.Fatalf("unknown transaction: %+v, %v; want neither mined nor pending", st, err)
	}
}
