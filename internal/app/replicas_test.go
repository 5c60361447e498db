package app

import (
	"math/big"
	"net/http"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/pgtest"
	"github.com/payper/payper/x402"
)

// postgresDSN creates a fresh database on the throwaway cluster `make test` starts and returns
// its DSN.
func postgresDSN(t *testing.T) string { return pgtest.Database(t, "payper_e2e") }

// TestReplicasOnOnePostgresServeAPaymentOnce races one payment across two gateway replicas that
// share a PostgreSQL database: the store's unique reservation, not a process-local cache, decides.
func TestReplicasOnOnePostgresServeAPaymentOnce(t *testing.T) {
	dsn := postgresDSN(t)
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	replica := func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn}
	}
	gateways := []string{e.startGateway(replica), e.startGateway(replica)}
	payer := account(9)
	before := e.balance(payer.Address)

	const rounds, perReplica = 5, 6
	for round := 0; round < rounds; round++ {
		header := encode(t, signPayment(t, payer.Key, challenge(t, "GET", gateways[0]+"/v1/quote")))
		var wg sync.WaitGroup
		var mu sync.Mutex
		served := 0
		start := make(chan struct{})
		for i := 0; i < 2*perReplica; i++ {
			wg.Add(1)
			go func(gw string) {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("GET", gw+"/v1/quote", nil)
				req.Header.Set(x402.HeaderPaymentSignature, header)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					served++
					mu.Unlock()
				} else if resp.StatusCode != 402 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}(gateways[i%2])
		}
		close(start)
		wg.Wait()
		if served != 1 {
			t.Fatalf("round %d: served %d times, want exactly once", round, served)
		}
	}
	if got := up.calls.Load(); got != rounds {
		t.Fatalf("upstream called %d times, want %d", got, rounds)
	}
	spent := new(big.Int).Sub(before, e.balance(payer.Address))
	if spent.Cmp(big.NewInt(rounds*1000)) != 0 {
		t.Fatalf("payer spent %s, want %d", spent, rounds*1000)
	}
}
