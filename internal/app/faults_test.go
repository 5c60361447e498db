package app

import (
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/faultupstream"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// upstreamBound is the upstream timeout the fault tests configure: short, so a hang costs
// little, and far above what a healthy loopback exchange takes.
const upstreamBound = 400 * time.Millisecond

// idleBound is the fault tests' bound between response body reads.
const idleBound = time.Second

// TestUpstreamFaultsThroughTheGateway pays for requests whose upstream misbehaves in each way a
// real one does, with both exact payments and channel vouchers, and checks each path's status
// and money: a request that was not answered in full charges nothing and leaves nothing
// reserved (the same payment works again afterwards), one that was answered is charged once.
// A voucher's charge is final once the upstream's headers arrive and its response streams, so a
// body that stalls after them is the upstream's failure: charged, and cut off (status 0); an
// exact payment in the default flow buffers such a body and charges nothing.
func TestUpstreamFaultsThroughTheGateway(t *testing.T) {
	up := faultupstream.Start(t)
	e := startEnv(t, up.URL)
	gw, base := e.startGatewayFull(func(c *config.Config) {
		faultRoutes(c, up.URL)
		// The idle bound is wide against the slow stream's pace, so that a loaded machine's
		// scheduling pauses stay inside it.
		c.UpstreamTimeouts = config.UpstreamTimeouts{Connect: upstreamBound, Header: upstreamBound, Idle: idleBound}
		c.UpstreamBreaker.Enabled = false // every case must reach the upstream
	})
	every := idleBound / 20
	cases := []struct {
		name    string
		path    string
		status  int
		charged bool
		// The channel's outcome when it differs (a stream cut after its charge was made final).
		channelStatus  int
		channelCharged bool
	}{
		{"answers", "/f/ok", 200, true, 0, false},
		{"hangs", "/f/hang", 504, false, 0, false},
		{"headers too late", "/f/status?code=200&after=10s", 504, false, 0, false},
		{"resets the connection", "/f/reset", 502, false, 0, false},
		{"503 after a delay", "/f/status?code=503&after=" + every.String(), 503, false, 0, false},
		{"500", "/f/status?code=500", 500, false, 0, false},
		{"streams slowly within the idle bound", "/f/slow?chunks=5&every=" + every.String(), 200, true, 0, false},
		{"stalls mid-body", "/f/stall?chunks=2", 502, false, -1, true},
	}

	exactPayer := account(7)
	channelPayer := account(8)
	offerURL := base + "/f/ok"
	channel := newChannelPayer(t, offerURL, channelPayer.Key)
	if r := send(t, "GET", offerURL, channel.deposit(100_000, 1000)); r.status != 200 {
		t.Fatalf("channel deposit: %d %s", r.status, r.body)
	}
	cumulative := int64(1000)
	exactReq := challenge(t, "GET", offerURL)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := base + tc.path

			// exact
			before := e.balance(exactPayer.Address)
			header := encode(t, signPayment(t, exactPayer.Key, exactReq))
			r := attempt(t, "GET", url, header)
			checkStatus(t, "exact", r, tc.status)
			spent := new(big.Int).Sub(before, e.balance(exactPayer.Address)).Int64()
			if want := priceIf(tc.charged); spent != want {
				t.Fatalf("exact: payer spent %d, want %d", spent, want)
			}
			checkNothingReserved(t, gw, exactPayer.Address.Hex())
			if !tc.charged {
				// Not consumed: the same authorization buys an answer now.
				if r := send(t, "GET", offerURL, header); r.status != 200 || r.settlement == nil || !r.settlement.Success {
					t.Fatalf("exact: the authorization was consumed by a failed request: %d %s", r.status, r.body)
				}
			}

			// channel
			status, charged := tc.status, tc.charged
			if tc.channelStatus != 0 {
				status, charged = max(tc.channelStatus, 0), tc.channelCharged
			}
			was := chargedOn(t, gw, channelPayer.Address)
			voucher := channel.voucher(cumulative + 1000)
			r = attempt(t, "GET", url, voucher)
			checkStatus(t, "channel", r, status)
			now := chargedOn(t, gw, channelPayer.Address)
			if got := new(big.Int).Sub(now, was).Int64(); got != priceIf(charged) {
				t.Fatalf("channel: charged %d for this request", got)
			}
			if !charged {
				if r := send(t, "GET", offerURL, voucher); r.status != 200 {
					t.Fatalf("channel: the voucher was charged by a failed request: %d %s", r.status, r.body)
				}
			}
			cumulative += 1000
		})
	}
}

// priceIf is what a request on /f/ costs when it was charged.
func priceIf(charged bool) int64 {
	if charged {
		return 1000
	}
	return 0
}

func checkStatus(t *testing.T, method string, r result, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status %d (%s), want %d", method, r.status, r.body, want)
	}
	switch want {
	case 502, 504:
		if !strings.Contains(r.body, `"error":"upstream_`) || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: the gateway's own %d must be JSON in protocol words: %s", method, want, r.body)
		}
	case 0:
		return
	}
	if want >= 400 && r.header.Get(x402.HeaderPaymentResponse) != "" {
		t.Fatalf("%s: a failed request carries a payment response", method)
	}
}

// checkNothingReserved: every payment of the payer is finished: settled or released, never left
// reserved or submitted.
func checkNothingReserved(t *testing.T, gw *Gateway, payer string) {
	t.Helper()
	payments, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range payments {
		if p.Status == store.StatusReserved || p.Status == store.StatusSubmitted {
			t.Fatalf("payment %d left %s", p.ID, p.Status)
		}
	}
}

// TestRouteTimeoutsOverrideGlobal: a route's own upstream bound replaces the global one for its
// requests only.
func TestRouteTimeoutsOverrideGlobal(t *testing.T) {
	up := faultupstream.Start(t)
	e := startEnv(t, up.URL)
	_, base := e.startGatewayFull(func(c *config.Config) {
		c.Upstream = up.URL
		c.UpstreamTimeouts.Header = time.Minute
		c.Routes = append(c.Routes, config.Route{Method: "*", Path: "/short/**", Price: "0",
			Timeouts: config.UpstreamTimeouts{Header: upstreamBound}})
	})
	start := time.Now()
	if r := attempt(t, "GET", base+"/short/hang", ""); r.status != 504 {
		t.Fatalf("route with its own header bound: %d %s", r.status, r.body)
	}
	if took := time.Since(start); took > 20*upstreamBound {
		t.Fatalf("answered after %s: the global bound was used", took)
	}
}
