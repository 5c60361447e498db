package settle_test

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/devtest"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/settle"
)

// signedTransfer is an exact payment of price from payer to payTo, as the batcher takes it.
func signedTransfer(t *testing.T, payer devkeys.Account, offer exact.Offer, price int64, spoil bool) settle.Transfer {
	t.Helper()
	p, err := (&exact.Signer{Key: payer.Key}).CreatePayload(offer.Requirements(big.NewInt(price)), nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := exact.ParsePayload(p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if spoil {
		pl.Signature[10] ^= 0xff // a signature that recovers to someone else: the token refuses it
	}
	a := pl.Authorization
	data, err := exact.TransferWithAuthorizationData(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, pl.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return settle.Transfer{Token: app.DevTokenAddress, Authorizer: a.From, Nonce: a.Nonce, Data: data}
}

// batcherEnv starts a dev chain and returns it, a settler client sending from test account 9,
// and an offer paying test account 1 in the dev token.
func batcherEnv(t *testing.T) (*devtest.Env, *evm.Client, exact.Offer) {
	t.Helper()
	env := devtest.Start(t, app.DevOptions{})
	accounts := devkeys.DevAccounts(10)
	settler, err := evm.Dial(context.Background(), env.Dev.Info.RPCURL, big.NewInt(1337), evm.Options{SettlerKey: accounts[9].Key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(settler.Close)
	offer := exact.Offer{Network: "eip155:1337", Asset: app.DevTokenAddress, Name: testusdc.Name, Version: testusdc.EIP712Version,
		PayTo: accounts[1].Address, MaxTimeoutSeconds: 300}
	return env, settler, offer
}

// TestBatcherSettlesConcurrentTransfersTogether: 100 payments settled at once land in a handful
// of transactions; one spoiled authorization among them is refused on its own and the others all
// land; every balance moves by exactly what was paid. It logs the gas per payment, alone and
// batched.
func TestBatcherSettlesConcurrentTransfersTogether(t *testing.T) {
	env, settler, offer := batcherEnv(t)
	accounts := devkeys.DevAccounts(10)
	payTo := offer.PayTo
	b := &settle.Batcher{Chain: settler, Window: 50 * time.Millisecond}
	ctx := context.Background()

	// One alone, for the gas a lone transfer costs.
	alone := b.Settle(ctx, signedTransfer(t, accounts[2], offer, 1000, false))
	if alone.Err != nil || !alone.Used {
		t.Fatalf("a lone transfer: %+v", alone)
	}

	payers := accounts[2:9]
	before := map[common.Address]*big.Int{payTo: env.Balance(payTo)}
	for _, p := range payers {
		before[p.Address] = env.Balance(p.Address)
	}
	const n = 100
	outcomes := make([]settle.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		payer := payers[i%len(payers)]
		tr := signedTransfer(t, payer, offer, 1000, i == 37)
		wg.Add(1)
		go func() { defer wg.Done(); outcomes[i] = b.Settle(ctx, tr) }()
	}
	wg.Wait()

	txs := map[common.Hash]uint64{}
	paid := map[common.Address]int64{}
	for i, o := range outcomes {
		if i == 37 {
			var revert *settle.SimulatedRevert
			if !errors.As(o.Err, &revert) || o.Used || o.Tx != (common.Hash{}) {
				t.Fatalf("the spoiled transfer: %+v; want refused before sending", o)
			}
			continue
		}
		if o.Err != nil || !o.Used || o.Receipt == nil {
			t.Fatalf("transfer %d: %+v", i, o)
		}
		txs[o.Tx] = o.Receipt.GasUsed
		paid[payers[i%len(payers)].Address] += 1000
	}
	if len(txs) > 5 {
		t.Fatalf("%d transfers took %d transactions, want a handful", n-1, len(txs))
	}
	for _, p := range payers {
		if spent := new(big.Int).Sub(before[p.Address], env.Balance(p.Address)).Int64(); spent != paid[p.Address] {
			t.Fatalf("payer %s spent %d, want %d", p.Address.Hex(), spent, paid[p.Address])
		}
	}
	if got := new(big.Int).Sub(env.Balance(payTo), before[payTo]).Int64(); got != (n-1)*1000 {
		t.Fatalf("payTo received %d, want %d", got, (n-1)*1000)
	}
	var gas uint64
	for _, g := range txs {
		gas += g
	}
	t.Logf("gas per payment: %d alone, %d batched (%d payments in %d transactions)", alone.Receipt.GasUsed, gas/(n-1), n-1, len(txs))
}
