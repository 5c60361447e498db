package app

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/internal/failpoint"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
	"github.com/payper/payper/x402"
)

// paymentsOf reads the payer's payment records from a gateway's SQLite database while the
// gateway runs.
func paymentsOf(t *testing.T, dbPath string, payer common.Address) []store.Payment {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps, err := st.ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Hex()})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// waitFor reads every 100 ms until ok accepts what read returns, and returns that; it fails the
// test with the last reading after within.
func waitFor[T any](t *testing.T, within time.Duration, read func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := read()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached the expected state; last seen: %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTerminal waits until every payment of the payer is settled, failed or released.
func waitTerminal(t *testing.T, dbPath string, payer common.Address, within time.Duration) []store.Payment {
	t.Helper()
	return waitFor(t, within, func() []store.Payment { return paymentsOf(t, dbPath, payer) }, func(ps []store.Payment) bool {
		done := len(ps) > 0
		for _, p := range ps {
			done = done && p.Status.Terminal()
		}
		return done
	})
}

// sendAway sends a paid request in the background and reports its status, or 0 when it got no
// answer (its gateway was killed).
func sendAway(url, payment string) <-chan int {
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("PAYMENT-SIGNATURE", payment)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	return answered
}

// TestGatewayKilledAtEachExactStep kills a gateway process (SIGKILL) at each step of an exact
// settlement, restarts it on the same database and chain, and has the payer retry the same
// payment. Whatever the step, the ledger agrees with the chain, the payer is charged at most
// once, never served without paying, and served once it paid.
func TestGatewayKilledAtEachExactStep(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	ctx := context.Background()
	// A payment whose transaction went out before the crash is settled by the restart, and the
	// retry of the same payment gets the response its first request kept before sending: with a
	// payment identifier (Payper's client sends one) or without (a stock client).
	steps := []struct {
		step       string
		payer      int
		afterCrash store.PaymentStatus // what the restart's reconciliation makes of the payment
		withID     bool
	}{
		{failpoint.ExactReserved, 2, store.StatusReleased, false},
		{failpoint.ExactWriteAhead, 3, store.StatusFailed, false}, // never broadcast: fails once expired
		{failpoint.ExactBroadcast, 4, store.StatusSettled, false},
		{failpoint.ExactMined, 5, store.StatusSettled, true},
	}
	for _, s := range steps {
		t.Run(s.step, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := devConfig(DevOptions{DataDir: dir, Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, up.server.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxTimeoutSeconds = 20 // an authorization that never went out expires soon, with room for a slow (race-instrumented) request
			cfg.SettlementTimeout = 3 * time.Second
			if s.step == failpoint.ExactMined {
				// The step is reached only by a request that sees its receipt: on the paced chain,
				// race-instrumented beside other packages' tests, that can take more than 3 s.
				cfg.SettlementTimeout = 12 * time.Second
			}
			cfgPath, dbPath := writeConfig(t, cfg), filepath.Join(dir, "payper.db")
			payer := account(s.payer)
			payerBefore, payToBefore := e.balance(payer.Address), e.balance(e.payTo)

			gw := startGatewayProcess(t, cfgPath, s.step)
			url := gw.url + "/v1/quote"
			req := challenge(t, "GET", url)
			payment := signPayment(t, payer.Key, req)
			if s.withID {
				declared := map[string]json.RawMessage{x402.ExtensionPaymentIdentifier: x402.PaymentIdentifierDeclaration(false)}
				if payment.Extensions, _, err = x402.WithPaymentIdentifier(declared, x402.NewPaymentID()); err != nil {
					t.Fatal(err)
				}
			}
			header := encode(t, payment)
			answered := sendAway(url, header)
			gw.waitStep(s.step)
			gw.kill()
			if status := <-answered; status != 0 {
				t.Fatalf("the killed gateway answered %d", status)
			}

			gw = startGatewayProcess(t, cfgPath, "")
			url = gw.url + "/v1/quote"
			ps := waitTerminal(t, dbPath, payer.Address, 30*time.Second)
			if len(ps) != 1 || ps[0].Status != s.afterCrash {
				t.Fatalf("after the restart: %+v, want one payment %s", ps, s.afterCrash)
			}
			// The payer retries the very same payment, as often as it is told to come back.
			served := 0
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
				r := send(t, "GET", url, header)
				if r.status == 200 {
					served++
					break
				}
				// A payer without an identifier is answered by the payment's own rules (nonce
				// already used) until the dead request's hold on its kept response lapses (the
				// settlement timeout and a few seconds): one that tries again later is served.
				comeBack := r.status == 409 || (r.settlement != nil && r.settlement.ErrorReason == string(x402.ReasonSettlementPending)) ||
					(!s.withID && s.afterCrash == store.StatusSettled)
				if !comeBack || time.Now().After(deadline) {
					if r.status != 402 {
						t.Fatalf("retry: %d %s", r.status, r.body)
					}
					break
				}
			}
			ps = waitTerminal(t, dbPath, payer.Address, 30*time.Second)

			settled := 0
			for _, p := range ps {
				if p.Status == store.StatusSettled {
					settled++
				}
			}
			pl, err := exact.ParsePayload(payment.Payload)
			if err != nil {
				t.Fatal(err)
			}
			used, err := e.chain.AuthorizationState(ctx, e.token, payer.Address, pl.Authorization.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address))
			received := new(big.Int).Sub(e.balance(e.payTo), payToBefore)
			switch {
			case settled > 1:
				t.Fatalf("one authorization recorded settled %d times: %+v", settled, ps)
			case used != (settled == 1):
				t.Fatalf("ledger and chain disagree: %d settled records, authorization used on chain: %v", settled, used)
			case spent.Int64() != int64(settled)*1000 || received.Cmp(spent) != 0:
				t.Fatalf("payer spent %s, payTo received %s, for %d settled payments of 1000", spent, received, settled)
			case served > settled:
				t.Fatalf("served %d responses for %d settled payments", served, settled)
			case settled == 1 && served == 0:
				t.Fatalf("the payer paid and was never served")
			}
			t.Logf("%s: %d settled, %d served after the retry", s.step, settled, served)
		})
	}
}
