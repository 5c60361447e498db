package app

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/payper/payper/config"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// channelPayer pays a gateway's batch-settlement offer with Payper's own signer.
type channelPayer struct {
	t      *testing.T
	url    string
	req    x402.PaymentRequirements
	signer *batch.Signer
}

func newChannelPayer(t *testing.T, url string, key *ecdsa.PrivateKey) *channelPayer {
	return &channelPayer{t: t, url: url, req: offerFor(t, "GET", url, batch.Scheme), signer: &batch.Signer{Key: key}}
}

func (c *channelPayer) header(p *batch.Payload, err error) string {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	pp, err := batch.PaymentPayload(c.req, nil, p)
	if err != nil {
		c.t.Fatal(err)
	}
	return encode(c.t, pp)
}

func (c *channelPayer) deposit(amount, cumulative int64) string {
	return c.header(c.signer.DepositPayload(c.req, big.NewInt(amount), big.NewInt(cumulative)))
}

func (c *channelPayer) voucher(cumulative int64) string {
	return c.header(c.signer.VoucherPayload(c.req, big.NewInt(cumulative)))
}

func TestChannelDepositThenVouchers(t *testing.T) {
	e := startEnv(t, "")
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(2)
	p := newChannelPayer(t, url, payer.Key)
	if p.req.Extra["receiverAuthorizer"] == nil || p.req.Extra["minDeposit"] != "10000" {
		t.Fatalf("offer extra %+v", p.req.Extra)
	}
	before := e.balance(payer.Address)

	r := send(t, "GET", url, p.deposit(5000, 1000))
	if r.status != 200 || r.settlement == nil || r.settlement.Transaction == "" || r.settlement.Amount != "5000" {
		t.Fatalf("deposit: %d %+v %s", r.status, r.settlement, r.body)
	}
	head, _ := e.chain.BlockNumber(context.Background())
	for cum := int64(2000); cum <= 5000; cum += 1000 {
		if r := send(t, "GET", url, p.voucher(cum)); r.status != 200 || r.settlement.Transaction != "" {
			t.Fatalf("voucher %d: %d %+v %s", cum, r.status, r.settlement, r.body)
		}
	}
	if after, _ := e.chain.BlockNumber(context.Background()); after != head {
		t.Fatalf("vouchers mined %d blocks; they must not touch the chain", after-head)
	}
	// Past the deposit: refused, nothing served.
	r = send(t, "GET", url, p.voucher(6000))
	if r.status != 402 || !strings.HasPrefix(r.required.Error, string(x402.ReasonBatchCumulativeExceedsBalance)) {
		t.Fatalf("over-balance voucher: %d %+v", r.status, r.required)
	}
	// A replayed (stale) voucher gets the corrective 402 with the channel's state.
	r = send(t, "GET", url, p.voucher(5000))
	if r.status != 402 || !strings.HasPrefix(r.required.Error, string(x402.ReasonBatchCumulativeAmountMismatch)) {
		t.Fatalf("stale voucher: %d %+v", r.status, r.required)
	}
	var corrected map[string]any
	for _, a := range r.required.Accepts {
		if a.Scheme == batch.Scheme {
			corrected, _ = a.Extra["channelState"].(map[string]any)
		}
	}
	if corrected["chargedCumulativeAmount"] != "5000" {
		t.Fatalf("corrective state %+v", corrected)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 5000 {
		t.Fatalf("payer spent %s, want exactly the deposit", spent)
	}
}

func TestChannelConcurrentVoucherServedOnce(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	p := newChannelPayer(t, url, account(3).Key)
	if r := send(t, "GET", url, p.deposit(20_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	next := p.voucher(2000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	start := make(chan struct{})
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set(x402.HeaderPaymentSignature, next)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == 200 {
				served++
			} else if resp.StatusCode != 402 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	if served != 1 || up.calls.Load() != 2 {
		t.Fatalf("one voucher served %d times, upstream called %d times", served, up.calls.Load())
	}
}

func TestChannelUpstreamFailureTakesTheChargeBack(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	p := newChannelPayer(t, url, account(4).Key)
	if r := send(t, "GET", url, p.deposit(20_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	up.status.Store(503)
	if r := send(t, "GET", url, p.voucher(2000)); r.status != 503 || r.settlement != nil {
		t.Fatalf("upstream 503: %d %+v", r.status, r.settlement)
	}
	up.status.Store(0)
	// The same cumulative amount is still the next one due: nothing was charged for the failure.
	if r := send(t, "GET", url, p.voucher(2000)); r.status != 200 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
}

func TestChannelVouchersSurviveARestart(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	dbPath := filepath.Join(t.TempDir(), "gateway.db")
	sameDB := func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Database = config.Database{Driver: config.DriverSQLite, DSN: dbPath}
	}
	first := e.startGateway(sameDB)
	payer := account(5)
	p := newChannelPayer(t, first+"/v1/quote", payer.Key)
	if r := send(t, "GET", first+"/v1/quote", p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	for cum := int64(2000); cum <= 4000; cum += 1000 {
		if r := send(t, "GET", first+"/v1/quote", p.voucher(cum)); r.status != 200 {
			t.Fatalf("voucher %d: %d", cum, r.status)
		}
	}
	// A second gateway process on the same database (a restart, or a replica) knows every
	// acknowledged voucher: the next one due is 5000, and its claim covers all of them.
	gw2, second := e.startGatewayFull(sameDB)
	if r := send(t, "GET", second+"/v1/quote", p.voucher(4000)); r.status != 402 {
		t.Fatalf("an acknowledged voucher was accepted again after the restart: %d", r.status)
	}
	if r := send(t, "GET", second+"/v1/quote", p.voucher(5000)); r.status != 200 {
		t.Fatalf("next voucher after the restart: %d %s", r.status, r.body)
	}
	payToBefore := e.balance(e.payTo)
	res, err := gw2.Claimer().RunOnce(context.Background())
	if err != nil || res.Amount.Int64() != 5000 {
		t.Fatalf("claim after the restart: %+v %v", res, err)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 5000 {
		t.Fatalf("payTo received %s, want every acknowledged voucher (5000)", got)
	}
}

// TestChannelWithdrawalStopsSpending: once the payer starts a withdrawal, the watcher mirrors it,
// the charged vouchers are claimed at once, and no voucher may spend what is being withdrawn.
func TestChannelWithdrawalStopsSpending(t *testing.T) {
	e := startEnv(t, "")
	ctx := context.Background()
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(6)
	p := newChannelPayer(t, url, payer.Key)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	if r := send(t, "GET", url, p.voucher(2000)); r.status != 200 {
		t.Fatalf("voucher: %d", r.status)
	}
	cfg, err := p.signer.ChannelConfig(p.req)
	if err != nil {
		t.Fatal(err)
	}
	self, err := dialAs(e, payer.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	payToBefore := e.balance(e.payTo)
	if _, err := self.InitiateWithdraw(ctx, cfg, big.NewInt(8000)); err != nil {
		t.Fatalf("initiate withdrawal: %v", err)
	}
	if err := e.dev.Gateway.Watcher().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 2000 {
		t.Fatalf("a withdrawal must trigger a claim of the charged 2000; payTo received %s", got)
	}
	r := send(t, "GET", url, p.voucher(3000))
	if r.status != 402 || !strings.HasPrefix(r.required.Error, string(x402.ReasonBatchCumulativeExceedsBalance)) {
		t.Fatalf("voucher into the withdrawn funds: %d %+v", r.status, r.required)
	}
}

// TestChannelCooperativeRefund: the payer asks for its unspent deposit back; one transaction pays
// the provider what was charged and returns the rest to the payer, exactly.
// TestChannelCooperativeRefund: a refund pays the provider exactly what was charged and returns
// exactly the rest, and its request never reaches the upstream: it pays for nothing, so it gets
// the gateway's own answer. The interleaving of a refund in flight with vouchers is pinned down
// in package batchmethod (TestRefundInFlightHoldsTheFunds).
func TestChannelCooperativeRefund(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	payer := account(7)
	p := newChannelPayer(t, url, payer.Key)
	payerBefore, payToBefore := e.balance(payer.Address), e.balance(e.payTo)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	for cum := int64(2000); cum <= 3000; cum += 1000 {
		if r := send(t, "GET", url, p.voucher(cum)); r.status != 200 {
			t.Fatalf("voucher %d: %d", cum, r.status)
		}
	}
	// A refund voucher must carry exactly the charged total.
	if r := send(t, "GET", url, p.header(p.signer.RefundPayload(p.req, big.NewInt(2000), nil))); r.status != 402 {
		t.Fatalf("refund at a stale total: %d", r.status)
	}
	served := up.calls.Load()
	r := send(t, "GET", url, p.header(p.signer.RefundPayload(p.req, big.NewInt(3000), nil)))
	if r.status != 200 || r.settlement == nil || !r.settlement.Success || r.settlement.Amount != "7000" || r.settlement.Transaction == "" {
		t.Fatalf("refund: %d %+v %s", r.status, r.settlement, r.body)
	}
	var body struct{ ChannelID, Refunded string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Refunded != "7000" || body.ChannelID == "" ||
		r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refund answer %q %v: %v", r.body, r.header, err)
	}
	if n := up.calls.Load(); n != served {
		t.Fatalf("the refund request reached the upstream (%d calls, was %d)", n, served)
	}
	if got := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); got.Int64() != 3000 {
		t.Fatalf("payer is out %s, want exactly the 3000 it spent", got)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 3000 {
		t.Fatalf("payTo received %s, want 3000", got)
	}
	// Nothing is left to spend.
	if r := send(t, "GET", url, p.voucher(4000)); r.status != 402 {
		t.Fatalf("voucher after the refund: %d", r.status)
	}
}

func TestChannelRejectsForeignAndMalformedVouchers(t *testing.T) {
	e := startEnv(t, "")
	url := e.dev.Info.GatewayURL + "/v1/quote"
	p := newChannelPayer(t, url, account(8).Key)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	signedFor := func(edit func(*x402.PaymentRequirements)) string {
		req := p.req
		req.Extra = map[string]any{}
		for k, v := range p.req.Extra {
			req.Extra[k] = v
		}
		edit(&req)
		pl, err := p.signer.VoucherPayload(req, big.NewInt(2000))
		if err != nil {
			t.Fatal(err)
		}
		pp, err := batch.PaymentPayload(p.req, nil, pl) // offered as if for the real requirement
		if err != nil {
			t.Fatal(err)
		}
		return encode(t, pp)
	}
	cases := []struct {
		name   string
		header string
		reason x402.Reason
	}{
		{"other receiver", signedFor(func(r *x402.PaymentRequirements) { r.PayTo = account(9).Address.Hex() }), x402.ReasonBatchReceiverMismatch},
		{"other chain", signedFor(func(r *x402.PaymentRequirements) { r.Network = "eip155:8453" }), x402.ReasonBatchChannelIDMismatch},
		{"other token", signedFor(func(r *x402.PaymentRequirements) { r.Asset = account(9).Address.Hex() }), x402.ReasonBatchTokenMismatch},
		{"other delay", signedFor(func(r *x402.PaymentRequirements) { r.Extra["withdrawDelay"] = 1800 }), x402.ReasonBatchWithdrawDelayMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, "GET", url, tc.header)
			if r.status != 402 || r.required == nil || !strings.HasPrefix(r.required.Error, string(tc.reason)) {
				t.Fatalf("status %d, 402 error %+v, want %s", r.status, r.required, tc.reason)
			}
		})
	}
	t.Run("malformed payload", func(t *testing.T) {
		pp, _ := batch.PaymentPayload(p.req, nil, &batch.Payload{Type: batch.TypeVoucher})
		pp.Payload = []byte(`{"type":"voucher","channelConfig":{"payer":"0x1"},"voucher":{}}`)
		r := send(t, "GET", url, encode(t, pp))
		if r.status != 402 || r.required == nil || !strings.HasPrefix(r.required.Error, "invalid_batch_settlement_evm") {
			t.Fatalf("status %d, %+v", r.status, r.required)
		}
	})
	// Nothing above was charged: the next voucher due is still 2000.
	if r := send(t, "GET", url, p.voucher(2000)); r.status != 200 {
		t.Fatalf("voucher after rejections: %d %s", r.status, r.body)
	}
}

// TestClaimMinValueSkipsDust: a claim round worth less than channels.claimMinValue waits.
func TestClaimMinValueSkipsDust(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	gw, url := e.startGatewayFull(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Channels.ClaimMinValue = "3000"
	})
	p := newChannelPayer(t, url+"/v1/quote", account(9).Key)
	if r := send(t, "GET", url+"/v1/quote", p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	if r := send(t, "GET", url+"/v1/quote", p.voucher(2000)); r.status != 200 {
		t.Fatalf("voucher: %d", r.status)
	}
	if res, err := gw.Claimer().RunOnce(context.Background()); err != nil || res.Channels != 0 {
		t.Fatalf("2000 charged is below the 3000 minimum, yet claimed: %+v %v", res, err)
	}
	if r := send(t, "GET", url+"/v1/quote", p.voucher(3000)); r.status != 200 {
		t.Fatalf("voucher: %d", r.status)
	}
	if res, err := gw.Claimer().RunOnce(context.Background()); err != nil || res.Amount.Int64() != 3000 {
		t.Fatalf("claim at the minimum: %+v %v", res, err)
	}
}
