package app

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// TestAsyncQueueSurvivesSIGKILL serves async payments from a gateway process whose queue is
// stopped, kills it (SIGKILL) with the queue full, restarts it with the queue running until a
// transfer is recorded before its broadcast, or broadcast, and kills it again there, then
// restarts it for good: every payment that was served is settled exactly once, the ledger
// agrees with the chain transfer for transfer, and nothing is left unsettled.
func TestAsyncQueueSurvivesSIGKILL(t *testing.T) {
	for _, step := range []string{failpoint.ExactWriteAhead, failpoint.ExactBroadcast} {
		t.Run(step, func(t *testing.T) { asyncQueueKilledAt(t, step) })
	}
}

func asyncQueueKilledAt(t *testing.T, step string) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	dir := t.TempDir()
	cfg, err := devConfig(DevOptions{DataDir: dir, Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, up.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Settlement.Flow = config.FlowAsync
	cfg.SettlementTimeout = 3 * time.Second
	cfgPath, dbPath := writeConfig(t, cfg), filepath.Join(dir, "payper.db")
	payer := account(6)
	payerBefore, payToBefore := e.balance(payer.Address), e.balance(e.payTo)
	const served = 12

	// 1. Served, queued, never sent: killed with the queue full.
	gw := startGatewayProcess(t, cfgPath, "", envQueueOff+"=1")
	url := gw.url + "/v1/quote"
	req := challenge(t, "GET", url)
	var nonces []*exact.Payload
	for range served {
		payment := signPayment(t, payer.Key, req)
		if r := send(t, "GET", url, encode(t, payment)); r.status != 200 || r.settlement == nil || r.settlement.Transaction != "" {
			t.Fatalf("async payment: %d %s %+v", r.status, r.body, r.settlement)
		}
		pl, err := exact.ParsePayload(payment.Payload)
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, pl)
	}
	gw.kill()
	if ps := paymentsOf(t, dbPath, payer.Address); len(ps) != served || !allQueued(ps) {
		t.Fatalf("after the first kill: %+v, want %d queued payments", ps, served)
	}

	// 2. The restarted queue sends the transfers; killed at step.
	gw = startGatewayProcess(t, cfgPath, step)
	gw.waitStep(step)
	gw.kill()
	t.Logf("killed at %s: %v", step, statusCounts(paymentsOf(t, dbPath, payer.Address)))

	// 3. Restarted for good: the reconciler and the queue finish everything.
	gw = startGatewayProcess(t, cfgPath, "")
	ps := waitTerminal(t, dbPath, payer.Address, 60*time.Second)
	settled := 0
	for _, p := range ps {
		if p.Status == store.StatusSettled {
			settled++
		}
	}
	for i, pl := range nonces {
		used, err := e.chain.AuthorizationState(context.Background(), e.token, payer.Address, pl.Authorization.Nonce)
		if err != nil || !used {
			t.Fatalf("authorization %d was never used on chain (%v)", i, err)
		}
	}
	spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address))
	received := new(big.Int).Sub(e.balance(e.payTo), payToBefore)
	if settled != served || len(ps) != served || spent.Int64() != served*1000 || received.Cmp(spent) != 0 {
		t.Fatalf("%d served, %d payments, %d settled; payer spent %s, payTo received %s", served, len(ps), settled, spent, received)
	}
	st, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if x, err := st.AsyncExposure(context.Background(), ""); err != nil || x.Unsettled.Sign() != 0 {
		t.Fatalf("unsettled after everything settled: %+v %v", x, err)
	}
	gw.kill()
}

func allQueued(ps []store.Payment) bool {
	for _, p := range ps {
		if p.Status != store.StatusReserved || !p.Queued || !p.Async {
			return false
		}
	}
	return true
}

func statusCounts(ps []store.Payment) map[store.PaymentStatus]int {
	n := map[store.PaymentStatus]int{}
	for _, p := range ps {
		n[p.Status]++
	}
	return n
}
