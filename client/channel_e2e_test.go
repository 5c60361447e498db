package client

import (
	"context"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/devtest"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// devEnv is the embedded chain, token, demo API and gateway, on loopback, for one test.
type devEnv struct {
	*devtest.Env
	t     *testing.T
	payTo common.Address
	quote string // a GET route priced at 1000 atomic units
}

func startDevEnv(t *testing.T) *devEnv {
	t.Helper()
	env := devtest.Start(t, app.DevOptions{})
	return &devEnv{Env: env, t: t, payTo: common.HexToAddress(env.Dev.Info.PayTo),
		quote: env.Dev.Info.GatewayURL + "/v1/quote"}
}

func (e *devEnv) balance(addr common.Address) *big.Int { return e.Balance(addr) }

func (e *devEnv) block() uint64 { return e.Block() }

func devAccount(i int) devkeys.Account { return devkeys.DevAccounts(10)[i] }

// countingTransport counts the HTTP requests that reach the server.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// channelClient pays with a channel first and exact as the fallback, at most 1000 per request.
func channelClient(acct devkeys.Account, store ChannelStore, deposit int64) (*http.Client, *ChannelPayer, *countingTransport) {
	cp := &ChannelPayer{Signer: &batch.Signer{Key: acct.Key}, Store: store}
	if deposit > 0 {
		cp.Deposit, cp.MaxDeposit = big.NewInt(deposit), big.NewInt(deposit)
	}
	base := &countingTransport{}
	tr := &Transport{Base: base, Payers: []Payer{&exact.Signer{Key: acct.Key}, cp}, MaxPerRequest: big.NewInt(1000)}
	return &http.Client{Transport: tr}, cp, base
}

func mustGet(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp
}

func mustRecord(t *testing.T, s ChannelStore, id common.Hash) *channelstore.Record {
	t.Helper()
	r, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantAmounts(t *testing.T, r *channelstore.Record, deposited, balance, charged int64) {
	t.Helper()
	if orZero(r.Deposited).Int64() != deposited || orZero(r.Balance).Int64() != balance || orZero(r.Charged).Int64() != charged {
		t.Fatalf("channel record: deposited %s balance %s charged %s; want %d %d %d", r.Deposited, r.Balance, r.Charged, deposited, balance, charged)
	}
}

// TestChannelOneDepositTenRequests: the SDK opens a channel with its first paid request and pays
// ten requests with one deposit transaction; a payer re-created from the same directory
// continues the cumulative total; the eleventh request tops the channel up; one claim pays the
// provider exactly what was charged.
func TestChannelOneDepositTenRequests(t *testing.T) {
	e := startDevEnv(t)
	payer := devAccount(2)
	dir := t.TempDir()
	store, _ := channelstore.Open(dir)
	payerBefore, escrowBefore, payToBefore := e.balance(payer.Address), e.balance(batch.SettlementAddress), e.balance(e.payTo)
	blockBefore := e.block()

	c, cp, counter := channelClient(payer, store, 10_000)
	for i := 0; i < 5; i++ {
		resp := mustGet(t, c, e.quote)
		s, _ := SettlementFrom(resp)
		if s == nil || !s.Success || (i == 0) != (s.Transaction != "") {
			t.Fatalf("request %d: settlement %+v (only the first carries a deposit transaction)", i, s)
		}
	}
	// A new payer on the same directory: a restart loses nothing.
	c, cp, counter2 := channelClient(payer, store, 10_000)
	for i := 5; i < 10; i++ {
		mustGet(t, c, e.quote)
	}
	if got := e.block(); got != blockBefore+1 {
		t.Fatalf("ten requests mined %d blocks; want exactly one (the deposit)", got-blockBefore)
	}
	if n := counter.n.Load() + counter2.n.Load(); n != 20 {
		t.Fatalf("%d HTTP requests for ten payments; want 20 (a 402 and a paid request each, no corrective round)", n)
	}
	offer := batchOffer(t, e.quote)
	id, rec, err := cp.Channel(offer)
	if err != nil || rec == nil {
		t.Fatalf("channel record: %v", err)
	}
	wantAmounts(t, rec, 10_000, 10_000, 10_000)
	if rec.Remaining().Sign() != 0 || !rec.HasOrigin(e.quote) || rec.LastDepositTx == (common.Hash{}) {
		t.Fatalf("record %+v", rec)
	}
	if spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); spent.Int64() != 10_000 {
		t.Fatalf("payer spent %s; want exactly the deposit 10000", spent)
	}
	if in := new(big.Int).Sub(e.balance(batch.SettlementAddress), escrowBefore); in.Int64() != 10_000 {
		t.Fatalf("escrow received %s; want 10000", in)
	}
	info, err := os.Stat(filepath.Join(dir, strings.ToLower(id.Hex())+".json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", info, err)
	}

	// The deposit is used up: the eleventh request tops up with one more deposit.
	mustGet(t, c, e.quote)
	if got := e.block(); got != blockBefore+2 {
		t.Fatalf("top-up: %d blocks since the start; want 2", got-blockBefore)
	}
	wantAmounts(t, mustRecord(t, store, id), 20_000, 20_000, 11_000)
	if spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); spent.Int64() != 20_000 {
		t.Fatalf("payer spent %s; want the two deposits, 20000", spent)
	}
	res, err := e.Dev.Gateway.Claimer().RunOnce(context.Background())
	if err != nil || res.Amount.Int64() != 11_000 {
		t.Fatalf("claim: %+v %v", res, err)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 11_000 {
		t.Fatalf("payTo received %s; want the 11 requests, 11000", got)
	}
}

// TestChannelColdStartResync: a payer that lost its channel state signs from zero, gets the
// corrective 402, checks that the server's last voucher carries its own signature, adopts the
// server's charged total and retries once — no second deposit, nothing paid twice.
func TestChannelColdStartResync(t *testing.T) {
	e := startDevEnv(t)
	payer := devAccount(3)
	first := channelstore.NewMemory()
	c, _, _ := channelClient(payer, first, 10_000)
	for i := 0; i < 3; i++ {
		mustGet(t, c, e.quote)
	}
	payerBefore, blockBefore := e.balance(payer.Address), e.block()

	fresh := channelstore.NewMemory() // the state is gone
	var attempts []Payment
	c, cp, counter := channelClient(payer, fresh, 10_000)
	c.Transport.(*Transport).OnPayment = func(p Payment) { attempts = append(attempts, p) }
	mustGet(t, c, e.quote)
	if len(attempts) != 2 || attempts[0].StatusCode != 402 || attempts[1].StatusCode != 200 || counter.n.Load() != 3 {
		t.Fatalf("attempts %+v over %d HTTP requests; want a corrected deposit, then one voucher", attempts, counter.n.Load())
	}
	_, rec, _ := cp.Channel(batchOffer(t, e.quote))
	wantAmounts(t, rec, 0, 10_000, 4000)
	if orZero(rec.SignedMax).Int64() != 4000 {
		t.Fatalf("signed max %s", rec.SignedMax)
	}
	if e.block() != blockBefore || e.balance(payer.Address).Cmp(payerBefore) != 0 {
		t.Fatal("the resynchronised payment touched the chain or the payer's tokens")
	}
	// The next request is an ordinary voucher.
	mustGet(t, c, e.quote)
	if counter.n.Load() != 5 {
		t.Fatalf("%d HTTP requests; the request after a resync needs no correction", counter.n.Load())
	}
	res, err := e.Dev.Gateway.Claimer().RunOnce(context.Background())
	if err != nil || res.Amount.Int64() != 5000 {
		t.Fatalf("claim: %+v %v", res, err)
	}
}

// TestChannelRefundSDK: a cooperative refund returns exactly what was not charged, at once.
func TestChannelRefundSDK(t *testing.T) {
	e := startDevEnv(t)
	payer := devAccount(4)
	store := channelstore.NewMemory()
	payerBefore, payToBefore := e.balance(payer.Address), e.balance(e.payTo)
	c, cp, _ := channelClient(payer, store, 10_000)
	for i := 0; i < 3; i++ {
		mustGet(t, c, e.quote)
	}
	res, err := cp.Refund(context.Background(), nil, e.quote, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Amount.Int64() != 7000 || res.Transaction == "" {
		t.Fatalf("refund %+v", res)
	}
	if res.Record.Remaining().Sign() != 0 || orZero(res.Record.Refunded).Int64() != 7000 || orZero(res.Record.Balance).Int64() != 3000 {
		t.Fatalf("record after the refund %+v", res.Record)
	}
	if spent := new(big.Int).Sub(payerBefore, e.balance(payer.Address)); spent.Int64() != 3000 {
		t.Fatalf("payer is out %s; want the 3000 it spent", spent)
	}
	if got := new(big.Int).Sub(e.balance(e.payTo), payToBefore); got.Int64() != 3000 {
		t.Fatalf("payTo received %s; want 3000", got)
	}
	// Nothing left: a second refund is refused, and the next request tops the channel up.
	if _, err := cp.Refund(context.Background(), nil, e.quote, nil); err == nil {
		t.Fatal("a refund of an empty channel succeeded")
	}
	blockBefore := e.block()
	mustGet(t, c, e.quote)
	if e.block() != blockBefore+1 {
		t.Fatal("the request after a full refund did not deposit")
	}
	id, _, _ := cp.Channel(batchOffer(t, e.quote))
	wantAmounts(t, mustRecord(t, store, id), 20_000, 13_000, 4000)
}

// batchOffer fetches url's batch-settlement requirement.
func batchOffer(t *testing.T, url string) x402.PaymentRequirements {
	t.Helper()
	_, o, err := probeOffer(context.Background(), http.DefaultTransport, url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// BenchmarkChannelVoucher measures one request paid by voucher through the dev gateway (a 402,
// then the paid request), with channel state on disk or in memory.
func BenchmarkChannelVoucher(b *testing.B) {
	for _, tc := range []struct {
		name  string
		store func(b *testing.B) ChannelStore
	}{
		{"dir", func(b *testing.B) ChannelStore { s, _ := channelstore.Open(b.TempDir()); return s }},
		{"memory", func(b *testing.B) ChannelStore { return channelstore.NewMemory() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dev, err := app.StartDev(ctx, app.DevOptions{DataDir: b.TempDir(), Listen: "127.0.0.1:0", RPCListen: "127.0.0.1:0"})
			if err != nil {
				b.Fatal(err)
			}
			defer dev.Close()
			go dev.Serve(ctx)
			acct := devAccount(2)
			deposit := big.NewInt(int64(b.N+10) * 1000)
			cp := &ChannelPayer{Signer: &batch.Signer{Key: acct.Key}, Store: tc.store(b), Deposit: deposit, MaxDeposit: deposit}
			c := &http.Client{Transport: &Transport{Payers: []Payer{cp}}}
			url := dev.Info.GatewayURL + "/v1/quote"
			get := func() {
				resp, err := c.Get(url)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%v %v", resp, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			get() // the deposit
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get()
			}
		})
	}
}
