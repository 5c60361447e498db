package app

import (
	"context"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/config"
	"github.com/payper/payper/x402"
)

// faultScale is how many times larger the fault suites run than in `make test`; `make
// test-faults` sets PAYPER_FAULT_SCALE=10.
func faultScale() int {
	if n, err := strconv.Atoi(os.Getenv("PAYPER_FAULT_SCALE")); err == nil && n > 0 {
		return n
	}
	return 1
}

// race sends header to every url in urls, copies times over, all at once, and returns how many
// were served (200). Any answer but 200 and 402 fails the test.
func race(t *testing.T, urls []string, header string, copies int) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	start := make(chan struct{})
	for i := 0; i < copies; i++ {
		wg.Add(1)
		go func(url string) {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set(x402.HeaderPaymentSignature, header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				mu.Lock()
				served++
				mu.Unlock()
			case 402:
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		}(urls[i%len(urls)])
	}
	close(start)
	wg.Wait()
	return served
}

// TestReplicasRaceReplaysAndVouchers: two gateway replicas on one PostgreSQL, with claim rounds
// running on both. Every exact payment is replayed many times across both at once, and every
// voucher of several channels is sent to both at once: each is served exactly once and charged
// exactly once, and in the end the provider has received, on chain, exactly what was served.
// `make test` runs 100 of each; `make test-faults` 1,000.
func TestReplicasRaceReplaysAndVouchers(t *testing.T) {
	dsn := postgresDSN(t)
	scale := faultScale()
	payments, replays := 5*scale, 20  // exact: payments × replays raced
	channels, vouchers := 2, 25*scale // channels × vouchers, each voucher raced on both replicas
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	replica := func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn}
		c.Channels.ClaimInterval = time.Second
	}
	gwA, urlA := e.startGatewayFull(replica)
	_, urlB := e.startGatewayFull(replica)
	urls := []string{urlA + "/v1/quote", urlB + "/v1/quote"}
	payToBefore := e.balance(e.payTo)

	// Exact: all payments raced at once.
	payer := account(9)
	payerBefore := e.balance(payer.Address)
	req := challenge(t, "GET", urls[0])
	var wg sync.WaitGroup
	servedExact := make([]int, payments)
	for i := range payments {
		header := encode(t, signPayment(t, payer.Key, req))
		wg.Add(1)
		go func() { defer wg.Done(); servedExact[i] = race(t, urls, header, replays) }()
	}
	wg.Wait()
	for i, n := range servedExact {
		if n != 1 {
			t.Fatalf("exact payment %d served %d times over %d replays", i, n, replays)
		}
	}
	if spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); spent.Int64() != int64(payments)*1000 {
		t.Fatalf("exact payer spent %s for %d payments of 1000", spent, payments)
	}

	// Channels: each channel's vouchers in order, each raced on both replicas, channels side by
	// side, claims running meanwhile.
	ids := make([]common.Hash, channels)
	for c := range channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newChannelPayer(t, urls[0], account(2+c).Key)
			cfg, err := p.signer.ChannelConfig(p.req)
			if err != nil {
				t.Error(err)
				return
			}
			ids[c] = gwA.channels.Verifier.ChannelID(cfg)
			if r := send(t, "GET", urls[0], p.deposit(int64(vouchers)*1000, 1000)); r.status != 200 {
				t.Errorf("deposit: %d %s", r.status, r.body)
				return
			}
			for v := 2; v <= vouchers; v++ {
				if n := race(t, urls, p.voucher(int64(v)*1000), 2); n != 1 {
					t.Errorf("channel %d voucher %d served %d times", c, v, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Every charge is claimed in the end, by whichever replica holds the claim lease.
	want := int64(vouchers) * 1000
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			st, err := e.chain.ChannelState(context.Background(), id)
			if err == nil && st.TotalClaimed.Int64() == want {
				break
			}
			if err == nil && st.TotalClaimed.Int64() > want {
				t.Fatalf("channel %s claimed %s, more than the %d served", id.Hex(), st.TotalClaimed, want)
			}
			if time.Now().After(deadline) {
				t.Fatalf("channel %s: claimed %v (%v), want %d", id.Hex(), st.TotalClaimed, err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	total := int64(payments)*1000 + int64(channels)*want
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != total {
		t.Fatalf("payTo received %s, want %d: exactly what was served", got, total)
	}
	if n := up.calls.Load(); n != int64(payments+channels*vouchers) {
		t.Fatalf("upstream served %d requests, want %d", n, payments+channels*vouchers)
	}
	t.Logf("%d exact payments × %d replays and %d channels × %d vouchers raced on two replicas", payments, replays, channels, vouchers)
}
