package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/config"
	exactmethod "github.com/payper/payper/method/exact"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// declared fetches a priced route's 402 and returns its extensions.
func declared(t *testing.T, url string) map[string]json.RawMessage {
	t.Helper()
	r := send(t, "GET", url, "")
	if r.status != http.StatusPaymentRequired || r.required == nil {
		t.Fatalf("402 expected: %d %s", r.status, r.body)
	}
	return r.required.Extensions
}

// withID echoes the server's extensions in p with the payment identifier id, as a client does.
func withID(t *testing.T, p *x402.PaymentPayload, ext map[string]json.RawMessage, id string) *x402.PaymentPayload {
	t.Helper()
	out, ok, err := x402.WithPaymentIdentifier(ext, id)
	if err != nil || !ok {
		t.Fatalf("the 402 does not declare payment-identifier: %v %v", ok, err)
	}
	p.Extensions = out
	return p
}

// TestPaymentIdentifierAnswersOncePerPayment: the same exact payment with the same identifier,
// sent again and then sent concurrently, is served from one upstream call and settled by one
// transfer; another payment under that identifier is 409; a malformed identifier is 400.
func TestPaymentIdentifierAnswersOncePerPayment(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	ext := declared(t, url)
	var decl struct {
		Info struct {
			Required *bool `json:"required"`
		} `json:"info"`
	}
	if err := json.Unmarshal(ext[x402.ExtensionPaymentIdentifier], &decl); err != nil || decl.Info.Required == nil || *decl.Info.Required {
		t.Fatalf("declaration %s", ext[x402.ExtensionPaymentIdentifier])
	}
	payer := account(2)
	before := e.balance(payer.Address)
	req := challenge(t, "GET", url)

	header := encode(t, withID(t, signPayment(t, payer.Key, req), ext, "pay_sequential_retry_000001"))
	first := send(t, "GET", url, header)
	if first.status != 200 || first.settlement == nil || !first.settlement.Success {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := send(t, "GET", url, header)
	if again.status != 200 || again.body != first.body || again.header.Get(paywall.HeaderReplayed) != "true" ||
		again.settlement == nil || again.settlement.Transaction != first.settlement.Transaction {
		t.Fatalf("retry: %d %s %+v", again.status, again.body, again.settlement)
	}

	// Another payment under the same identifier, and malformed identifiers.
	other := encode(t, withID(t, signPayment(t, payer.Key, req), ext, "pay_sequential_retry_000001"))
	if r := send(t, "GET", url, other); r.status != http.StatusConflict || !strings.Contains(r.body, "payment_identifier_conflict") {
		t.Fatalf("same id, another payment: %d %s", r.status, r.body)
	}
	bad := signPayment(t, payer.Key, req)
	bad.Extensions = map[string]json.RawMessage{x402.ExtensionPaymentIdentifier: json.RawMessage(`{"info":{"required":false,"id":"pay_short"}}`)}
	if r := send(t, "GET", url, encode(t, bad)); r.status != http.StatusBadRequest || !strings.Contains(r.body, "invalid_payment_identifier") {
		t.Fatalf("short id: %d %s", r.status, r.body)
	}

	// The same payment and identifier sent by eight callers at once: one runs, the others wait
	// for its answer (or are told to come back), and a retry afterwards gets that answer.
	concurrent := encode(t, withID(t, signPayment(t, payer.Key, req), ext, "pay_concurrent_retry_00001"))
	const n = 8
	answers := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = sendNoFatal(url, concurrent)
		})
	}
	close(start)
	wg.Wait()
	served := ""
	for _, a := range answers {
		switch {
		case a.status == 200 && (served == "" || a.body == served):
			served = a.body
		case a.status == http.StatusConflict && strings.Contains(a.body, "payment_in_progress"):
		default:
			t.Fatalf("concurrent copy: %d %s", a.status, a.body)
		}
	}
	if last := send(t, "GET", url, concurrent); last.status != 200 || (served != "" && last.body != served) {
		t.Fatalf("retry after the race: %d %s", last.status, last.body)
	}

	if got := up.calls.Load(); got != 2 {
		t.Fatalf("upstream called %d times, want 2 (one per payment)", got)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(2000)) != 0 {
		t.Fatalf("payer spent %s, want exactly 2000 (two payments)", spent)
	}
	payments, err := e.dev.Gateway.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex()})
	if err != nil || len(payments) != 2 {
		t.Fatalf("payments %+v %v", payments, err)
	}
}

func sendNoFatal(url, header string) result {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set(x402.HeaderPaymentSignature, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return result{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(body), header: resp.Header}
}

// TestPaymentIdentifierRequired: with idempotency.required, the 402 says so and a payment
// without an identifier is refused before anything is verified or charged.
func TestPaymentIdentifierRequired(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	gateway := e.startGateway(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Idempotency.Required = true
	})
	url := gateway + "/v1/quote"
	ext := declared(t, url)
	if !strings.Contains(string(ext[x402.ExtensionPaymentIdentifier]), `"required":true`) {
		t.Fatalf("declaration %s", ext[x402.ExtensionPaymentIdentifier])
	}
	payer := account(3)
	before := e.balance(payer.Address)
	req := challenge(t, "GET", url)
	if r := send(t, "GET", url, encode(t, signPayment(t, payer.Key, req))); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, "payment_identifier_required") {
		t.Fatalf("without an id: %d %s", r.status, r.body)
	}
	if r := send(t, "GET", url, encode(t, withID(t, signPayment(t, payer.Key, req), ext, "pay_required_id_0000001"))); r.status != 200 {
		t.Fatalf("with an id: %d %s", r.status, r.body)
	}
	if up.calls.Load() != 1 {
		t.Fatalf("upstream called %d times", up.calls.Load())
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(1000)) != 0 {
		t.Fatalf("payer spent %s, want 1000", spent)
	}
}

// receiptHider is a JSON-RPC proxy that, while hiding, answers every receipt lookup with null: the
// node mines settlements at once, but the gateway cannot see that they were mined.
type receiptHider struct {
	hide   atomic.Bool
	server *httptest.Server
}

func newReceiptHider(t *testing.T, target string) *receiptHider {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	h := &receiptHider{}
	h.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.hide.Load() {
			body, _ := io.ReadAll(r.Body)
			var call struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(body, &call) == nil && call.Method == "eth_getTransactionReceipt" {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":null}`, call.ID)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(h.server.Close)
	return h
}

// TestPendingSettlementIsServedOnRetry is x402 issue #1062 end to end: the settlement outlasts
// the gateway's wait, so the caller gets "pending" and no response; retrying the same payment
// with the same identifier while it is still pending gets "pending" again without a second call
// upstream; once the reconciler has recorded the settlement, the retry gets the response. A
// second payment is resolved by another replica on the same database, without the reconciler.
// Each payment moves money once. The replicas share one SQLite file, or one PostgreSQL database.
func TestPendingSettlementIsServedOnRetry(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		shared := filepath.Join(t.TempDir(), "shared.db")
		pendingSettlementRetry(t, func(c *config.Config) { c.Database.DSN = shared })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := postgresDSN(t)
		pendingSettlementRetry(t, func(c *config.Config) { c.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn} })
	})
}

func pendingSettlementRetry(t *testing.T, database func(*config.Config)) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	hider := newReceiptHider(t, e.dev.Info.RPCURL)
	gwA, urlA := e.startGatewayFull(func(c *config.Config) {
		c.RPCURL, c.Upstream, c.SettlementTimeout = hider.server.URL, up.server.URL, time.Second
		database(c)
	})
	urlB := e.startGateway(func(c *config.Config) {
		c.Upstream = up.server.URL
		database(c)
	})
	payer := account(4)
	before := e.balance(payer.Address)
	req := challenge(t, "GET", urlA+"/v1/quote")
	ext := declared(t, urlA+"/v1/quote")
	hider.hide.Store(true)

	pay := func(id string) string {
		header := encode(t, withID(t, signPayment(t, payer.Key, req), ext, id))
		r := send(t, "GET", urlA+"/v1/quote", header)
		if r.status != http.StatusPaymentRequired || r.settlement == nil || r.settlement.ErrorReason != string(x402.ReasonSettlementPending) ||
			strings.Contains(r.body, "/v1/quote") {
			t.Fatalf("first answer: %d %s %+v; want a pending 402 that withholds the response", r.status, r.body, r.settlement)
		}
		return header
	}
	first := pay("pay_pending_reconciled_01")
	if r := send(t, "GET", urlA+"/v1/quote", first); r.status != http.StatusPaymentRequired ||
		r.settlement == nil || r.settlement.ErrorReason != string(x402.ReasonSettlementPending) {
		t.Fatalf("retry while pending: %d %s", r.status, r.body)
	}
	if up.calls.Load() != 1 {
		t.Fatalf("a pending retry called the upstream again (%d calls)", up.calls.Load())
	}

	// The reconciler finds the receipt and records the settlement.
	hider.hide.Store(false)
	chain, err := evm.Dial(context.Background(), e.dev.Info.RPCURL, big.NewInt(1337), evm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	rec := &exactmethod.Reconciler{Ledger: gwA.Store(), Chain: chain, Now: func() time.Time { return time.Now().Add(time.Hour) }}
	if n, err := rec.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("reconciled %d, %v; want 1", n, err)
	}
	served := send(t, "GET", urlA+"/v1/quote", first)
	var quote map[string]string
	if served.status != 200 || json.Unmarshal([]byte(served.body), &quote) != nil || quote["payer"] != payer.Address.Hex() ||
		served.settlement == nil || !served.settlement.Success || len(served.settlement.Transaction) != 66 {
		t.Fatalf("retry after settlement: %d %s %+v", served.status, served.body, served.settlement)
	}

	// Another payment ends pending on replica A; replica B finds the receipt itself.
	hider.hide.Store(true)
	second := pay("pay_pending_other_replica")
	hider.hide.Store(false)
	r := send(t, "GET", urlB+"/v1/quote", second)
	if r.status != 200 || !strings.Contains(r.body, payer.Address.Hex()) || r.settlement == nil || !r.settlement.Success {
		t.Fatalf("retry on the other replica: %d %s %+v", r.status, r.body, r.settlement)
	}

	// A stock client sends no identifier: the gateway keeps its response under one of its own,
	// and its retry of the same payment is served once the settlement lands, then never again.
	hider.hide.Store(true)
	stock := encode(t, signPayment(t, payer.Key, req))
	if r := send(t, "GET", urlA+"/v1/quote", stock); r.status != http.StatusPaymentRequired || r.settlement == nil ||
		r.settlement.ErrorReason != string(x402.ReasonSettlementPending) {
		t.Fatalf("stock client's first answer: %d %s", r.status, r.body)
	}
	hider.hide.Store(false)
	r = send(t, "GET", urlB+"/v1/quote", stock)
	if r.status != 200 || !strings.Contains(r.body, payer.Address.Hex()) || r.settlement == nil || !r.settlement.Success {
		t.Fatalf("stock client's retry once settled: %d %s %+v", r.status, r.body, r.settlement)
	}
	if r := send(t, "GET", urlA+"/v1/quote", stock); r.status != http.StatusPaymentRequired {
		t.Fatalf("stock client's payment replayed after it was served: %d %s", r.status, r.body)
	}

	if up.calls.Load() != 3 {
		t.Fatalf("upstream called %d times, want 3", up.calls.Load())
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Cmp(big.NewInt(3000)) != 0 {
		t.Fatalf("payer spent %s, want exactly 3000", spent)
	}
	payments, err := gwA.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex()})
	if err != nil || len(payments) != 3 {
		t.Fatalf("payments %+v %v", payments, err)
	}
	for _, p := range payments {
		if p.Status != store.StatusSettled {
			t.Fatalf("payments %+v", payments)
		}
	}
}

// TestChannelVoucherRetryIsAnsweredOnce: a voucher resent with its identifier gets the first
// answer, and the channel is charged once (the next voucher follows on the first).
func TestChannelVoucherRetryIsAnsweredOnce(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	url := e.dev.Info.GatewayURL + "/v1/quote"
	ext := declared(t, url)
	p := newChannelPayer(t, url, account(5).Key)
	if r := send(t, "GET", url, p.deposit(10_000, 1000)); r.status != 200 {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	pl, err := p.signer.VoucherPayload(p.req, big.NewInt(2000))
	if err != nil {
		t.Fatal(err)
	}
	pp, err := batch.PaymentPayload(p.req, nil, pl)
	if err != nil {
		t.Fatal(err)
	}
	header := encode(t, withID(t, pp, ext, "pay_channel_voucher_retry"))
	first := send(t, "GET", url, header)
	again := send(t, "GET", url, header)
	if first.status != 200 || again.status != 200 || again.body != first.body || again.header.Get(paywall.HeaderReplayed) != "true" {
		t.Fatalf("first %d %s, retry %d %s", first.status, first.body, again.status, again.body)
	}
	if r := send(t, "GET", url, p.voucher(3000)); r.status != 200 {
		t.Fatalf("next voucher: %d %s (the retry must not have charged)", r.status, r.body)
	}
	if up.calls.Load() != 3 {
		t.Fatalf("upstream called %d times, want 3", up.calls.Load())
	}
}
