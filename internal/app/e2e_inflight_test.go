package app

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/config"
	"github.com/payper/payper/scheme/batch"
)

// gatedUpstream serves /v1/quote at once, except requests carrying X-Test-Hold: those wait
// until the test releases them with a status, so a paid request can be kept in flight.
type gatedUpstream struct {
	entered chan struct{}
	release chan int
	server  *httptest.Server
}

func newGatedUpstream(t *testing.T) *gatedUpstream {
	u := &gatedUpstream{entered: make(chan struct{}, 8), release: make(chan int, 8)}
	u.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if r.Header.Get("X-Test-Hold") != "" {
			u.entered <- struct{}{}
			var ok bool
			if status, ok = <-u.release; !ok {
				status = http.StatusServiceUnavailable
			}
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	}))
	t.Cleanup(func() { close(u.release); u.server.Close() })
	return u
}

// sendHeld sends a paid request the gated upstream holds, and returns its status when answered.
func sendHeld(t *testing.T, url, payment string) <-chan int {
	out := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("PAYMENT-SIGNATURE", payment)
		req.Header.Set("X-Test-Hold", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			out <- 0
			return
		}
		resp.Body.Close()
		out <- resp.StatusCode
	}()
	return out
}

func waitEntered(t *testing.T, u *gatedUpstream) {
	t.Helper()
	select {
	case <-u.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the held request never reached the upstream")
	}
}

// TestInFlightChargesAreNeitherClaimedNorRefunded: a voucher whose request is still being served
// is not money yet. A claim round and a cooperative refund that run meanwhile leave it out; when
// the upstream then fails, the charge is given back without going below what was claimed, and
// the channel goes on working: the next voucher is accepted and a refund returns every unspent
// unit. Run on SQLite and on PostgreSQL.
func TestInFlightChargesAreNeitherClaimedNorRefunded(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			up := newGatedUpstream(t)
			e := startEnv(t, up.server.URL)
			edit := func(c *config.Config) { c.Upstream = up.server.URL }
			if backend == "postgres" {
				dsn := postgresDSN(t)
				edit = func(c *config.Config) {
					c.Upstream = up.server.URL
					c.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn}
				}
			}
			gw, base := e.startGatewayFull(edit)
			url := base + "/v1/quote"
			payer := account(6)
			p := newChannelPayer(t, url, payer.Key)
			payerBefore := e.balance(payer.Address)
			r := send(t, "GET", url, p.deposit(20_000, 1000))
			if r.status != 200 {
				t.Fatalf("deposit: %d %s", r.status, r.body)
			}
			channelID := r.settlement.Extra["channelState"].(map[string]any)["channelId"].(string)

			// A claim round while the 2000 voucher is in flight claims only the final 1000.
			held := sendHeld(t, url, p.voucher(2000))
			waitEntered(t, up)
			res, err := gw.Claimer().RunOnce(context.Background())
			if err != nil || res.Amount.Int64() != 1000 {
				t.Fatalf("claim during an in-flight request: %+v %v; want 1000 claimed", res, err)
			}
			up.release <- http.StatusInternalServerError
			if status := <-held; status != http.StatusInternalServerError {
				t.Fatalf("held request: %d, want the upstream's 500", status)
			}
			ch, err := gw.Store().GetChannel(context.Background(), channelID)
			if err != nil || ch.Charged.Int64() != 1000 || ch.Claimed.Int64() != 1000 {
				t.Fatalf("after the failed request: %+v %v; want charged = claimed = 1000", ch, err)
			}
			if r := send(t, "GET", url, p.voucher(2000)); r.status != 200 {
				t.Fatalf("the next voucher after the failure: %d %s", r.status, r.body)
			}

			// A refund while the 3000 voucher is in flight keeps that charge out of its claim and
			// leaves its amount in the channel.
			held = sendHeld(t, url, p.voucher(3000))
			waitEntered(t, up)
			r = send(t, "GET", url, p.header(p.signer.RefundPayload(p.req, big.NewInt(3000), nil)))
			if r.status != 200 || r.settlement.Amount != "17000" {
				t.Fatalf("refund during an in-flight request: %d %+v %s", r.status, r.settlement, r.body)
			}
			if st, err := e.chain.ChannelState(context.Background(), common.HexToHash(channelID)); err != nil || st.TotalClaimed.Int64() != 2000 {
				t.Fatalf("on chain after the refund: %+v %v; want 2000 claimed", st, err)
			}
			up.release <- http.StatusBadGateway
			if status := <-held; status != http.StatusBadGateway {
				t.Fatalf("held request: %d, want the upstream's 502", status)
			}
			// The failed request's 1000 is unspent again: a refund returns it.
			r = send(t, "GET", url, p.header(p.signer.RefundPayload(p.req, big.NewInt(2000), nil)))
			if r.status != 200 || r.settlement.Amount != "1000" {
				t.Fatalf("refund of the rest: %d %+v %s", r.status, r.settlement, r.body)
			}
			if spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); spent.Int64() != 2000 {
				t.Fatalf("payer is out %s, want exactly the 2000 its two served requests cost", spent)
			}
			_ = batch.Scheme
		})
	}
}
