package app

import (
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/faultnet"
)

// TestDatabaseGoneFailsClosed: the gateway's PostgreSQL goes away (every connection cut, new ones
// refused) and comes back. Meanwhile paid requests, exact and by voucher, get 503 with Retry-After
// and are neither served nor charged, free routes keep working, and once the database is back the
// very same payments are accepted, served and charged once.
func TestDatabaseGoneFailsClosed(t *testing.T) {
	dsn := postgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultnet.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	base := e.startGateway(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Database = config.Database{Driver: config.DriverPostgres, DSN: u.String()}
	})
	url := base + "/v1/quote"
	payer := account(5)
	before := e.balance(payer.Address)
	if r := send(t, "GET", url, encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))); r.status != 200 {
		t.Fatalf("exact payment before the outage: %d %s", r.status, r.body)
	}
	p := newChannelPayer(t, url, account(6).Key)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit before the outage: %d %s", r.status, r.body)
	}
	served := up.calls.Load()

	proxy.Down()
	exactPayment := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))
	voucher := p.voucher(2000)
	for name, header := range map[string]string{"exact": exactPayment, "voucher": voucher} {
		r := send(t, "GET", url, header)
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s payment with the database gone: %d %q %s; want 503 with Retry-After", name, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if n := up.calls.Load(); n != served {
		t.Fatalf("the upstream served %d paid requests while the database was gone", n-served)
	}
	if r := send(t, "GET", base+"/v1/health", ""); r.status != 200 {
		t.Fatalf("free route with the database gone: %d", r.status)
	}
	served = up.calls.Load()

	proxy.Up()
	deadline := time.Now().Add(30 * time.Second)
	for name, header := range map[string]string{"exact": exactPayment, "voucher": voucher} {
		for {
			r := send(t, "GET", url, header)
			if r.status == 200 {
				break
			}
			if r.status != 503 || time.Now().After(deadline) {
				t.Fatalf("%s payment once the database is back: %d %s", name, r.status, r.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if n := up.calls.Load(); n != served+2 {
		t.Fatalf("upstream served %d after the outage, want 2", n-served)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 2000 {
		t.Fatalf("exact payer spent %s, want 2000 for two payments", spent)
	}
}
