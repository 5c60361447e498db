package app

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/evm"
	exactmethod "github.com/payper/payper/method/exact"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
)

// TestReconcilerFinishesWhatACrashLeft replays the states a killed gateway leaves behind: a
// reservation never broadcast, a transfer broadcast and mined but never recorded as settled, and
// a recorded hash that never reached the chain. A restart's reconciliation must settle, release or
// fail each one, and move money at most once.
func TestReconcilerFinishesWhatACrashLeft(t *testing.T) {
	e := startEnv(t, "")
	ctx := context.Background()
	st := e.dev.Gateway.Store()
	settler, err := evm.Dial(ctx, e.dev.Info.RPCURL, big.NewInt(1337), evm.Options{SettlerKey: account(3).Key})
	if err != nil {
		t.Fatal(err)
	}
	defer settler.Close()
	req := challenge(t, "GET", e.dev.Info.GatewayURL+"/v1/quote")
	payer := account(4)
	before := e.balance(payer.Address)

	reserve := func() (int64, *exact.Payload) {
		p := signPayment(t, payer.Key, req)
		pl, err := exact.ParsePayload(p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		a := pl.Authorization
		id, err := st.ReservePayment(ctx, &store.Payment{Scheme: "exact", Network: req.Network, Asset: req.Asset,
			Payer: a.From.Hex(), PayTo: a.To.Hex(), Amount: a.Value, Nonce: a.Nonce.Hex(),
			ValidBefore: time.Unix(a.ValidBefore.Int64(), 0), Method: "GET", Route: "/v1/quote", Resource: "/v1/quote"})
		if err != nil {
			t.Fatal(err)
		}
		return id, pl
	}

	// 1. Killed after reserving, before broadcasting.
	unsent, _ := reserve()
	// 2. Killed after broadcasting (hash recorded first), before recording the receipt.
	mined, pl := reserve()
	a := pl.Authorization
	data, _ := exact.TransferWithAuthorizationData(a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, pl.Signature)
	hash, err := settler.Send(ctx, DevTokenAddress, data, func(h common.Hash) error { return st.MarkSubmitted(ctx, mined, h.Hex()) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settler.WaitMined(ctx, hash); err != nil {
		t.Fatal(err)
	}
	// 3. A hash recorded whose transaction never reached the node.
	lost, _ := reserve()
	if err := st.MarkSubmitted(ctx, lost, common.HexToHash("0xdead").Hex()); err != nil {
		t.Fatal(err)
	}

	// Restart: reconcile as if long after the authorizations expired.
	rec := &exactmethod.Reconciler{Ledger: st, Chain: settler, Now: func() time.Time { return time.Now().Add(time.Hour) }}
	done, err := rec.RunOnce(ctx)
	if err != nil || done != 3 {
		t.Fatalf("reconciled %d, %v; want 3", done, err)
	}
	want := map[int64]store.PaymentStatus{unsent: store.StatusReleased, mined: store.StatusSettled, lost: store.StatusFailed}
	for id, status := range want {
		p, err := st.GetPayment(ctx, id)
		if err != nil || p.Status != status {
			t.Fatalf("payment %d: %+v %v, want %s", id, p, err, status)
		}
	}
	if p, _ := st.GetPayment(ctx, mined); common.HexToHash(p.TxHash) != hash {
		t.Fatalf("settled with hash %s, want %s", p.TxHash, hash.Hex())
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(1000)) != 0 {
		t.Fatalf("payer spent %s, want exactly one payment of 1000", spent)
	}
	// A second pass has nothing left to do.
	if n, err := rec.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("second pass: %d %v", n, err)
	}
}
