package interop_test

import (
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/x402"
)

// TestStockClientPaymentIdentifier: the stock client, using the reference's own
// payment-identifier helper, pays the gateway with an identifier. Its exact payment sent again
// gets the kept answer, not a second charge; a second run under the same identifier signs a new
// payment, which the gateway refuses with 409. Without the helper (TestStockClientPaysGateway)
// the client echoes the declaration without an id and pays as before.
func TestStockClientPaymentIdentifier(t *testing.T) {
	nodeBinary(t)
	ctx := t.Context()
	env := startDev(t)
	payer := devkeys.DevAccounts(testAccountsToUse)[stockQuotePayer]
	payTo := common.HexToAddress(env.Dev.Info.PayTo)
	payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo)

	// A recording proxy keeps the payment header the stock client sent.
	target, _ := url.Parse(env.Dev.Info.GatewayURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var sent []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get(x402.HeaderPaymentSignature); h != "" {
			mu.Lock()
			sent = append(sent, h)
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	const id = "pay_stock_client_0123456789abcdef"
	vars := map[string]string{
		"URL":         proxy.URL + "/v1/quote",
		"PRIVATE_KEY": keyHex(payer),
		"NETWORK":     env.Dev.Info.Network,
		"ASSET":       env.Dev.Info.Asset.Address,
		"MAX_AMOUNT":  big.NewInt(quoteAtomicPrice).String(),
		"PAYMENT_ID":  id,
	}
	first := runStockClient(ctx, t, vars)
	if first.Status != http.StatusOK || first.PaymentResponse == nil || !first.PaymentResponse.Success {
		t.Fatalf("stock client with an identifier: %+v", first)
	}
	if len(sent) != 1 {
		t.Fatalf("the stock client sent %d payments", len(sent))
	}
	p, err := x402.DecodePaymentPayload(sent[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := x402.PaymentIdentifier(p.Extensions); got != id || err != nil {
		t.Fatalf("the stock client sent identifier %q (%v); extensions %s", got, err, p.Extensions[x402.ExtensionPaymentIdentifier])
	}

	// The stock client's exact payment, sent again: the kept answer.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.Dev.Info.GatewayURL+"/v1/quote", nil)
	req.Header.Set(x402.HeaderPaymentSignature, sent[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != first.Body || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("resent stock payment: %d %s", resp.StatusCode, body)
	}
	settlement, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
	if err != nil || !strings.EqualFold(settlement.Transaction, first.PaymentResponse.Transaction) {
		t.Fatalf("resent stock payment settlement %+v %v, first %+v", settlement, err, first.PaymentResponse)
	}

	// A second run signs a new authorization under the same identifier.
	second := runStockClient(ctx, t, vars)
	if second.Status != http.StatusConflict || !strings.Contains(second.Body, "payment_identifier_conflict") {
		t.Fatalf("second run, same identifier: %+v", second)
	}
	requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -quoteAtomicPrice)
	requireDelta(t, "payTo", payToBefore, env.balance(ctx, t, payTo), quoteAtomicPrice)
}
