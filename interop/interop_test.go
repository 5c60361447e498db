package interop_test

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/client"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/devtest"
	"github.com/payper/payper/scheme/exact"
)

// Test accounts of the public test mnemonic. 0 settles for the gateway and 1 is its payTo, so
// these tests pay from 5–9; 4 is the stock facilitator, which must not share account 0's nonces.
const (
	stockQuotePayer   = 5
	stockEchoPayer    = 6
	stockRepeatPayer  = 7
	goClientPayer     = 8
	stockServerPayTo  = 9
	stockFacilitator  = 4
	stockServerPrice  = 1500
	quoteAtomicPrice  = 1000
	echoAtomicPrice   = 2000
	testAccountsToUse = 10
)

var (
	txHashPattern = regexp.MustCompile(`^0x[0-9a-fA-F]{64}$`)
	transferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
)

// devEnv is a dev environment plus a read-only view of its chain.
type devEnv struct {
	*devtest.Env
}

// startDev starts a dev environment whose gateway serves until the test ends.
func startDev(t *testing.T) *devEnv {
	t.Helper()
	return &devEnv{devtest.Start(t, app.DevOptions{})}
}

func (e *devEnv) balance(_ context.Context, _ *testing.T, owner common.Address) *big.Int {
	return e.Balance(owner)
}

// requireDelta checks that an account moved by exactly want atomic units.
func requireDelta(t *testing.T, who string, before, after *big.Int, want int64) {
	t.Helper()
	got := new(big.Int).Sub(after, before)
	if got.Cmp(big.NewInt(want)) != 0 {
		t.Errorf("%s balance moved by %s, want %d (before %s, after %s)", who, got, want, before, after)
	}
}

// requireSettledTransfer waits for the settlement transaction and checks that it succeeded and
// that it is the token transfer the payment promised.
func (e *devEnv) requireSettledTransfer(ctx context.Context, t *testing.T, tx string, from, to common.Address, amount int64) {
	t.Helper()
	if !txHashPattern.MatchString(tx) {
		t.Fatalf("settlement transaction %q is not a 0x-prefixed 32-byte hash", tx)
	}
	receipt, err := e.Chain.WaitMined(ctx, common.HexToHash(tx))
	if err != nil {
		t.Fatalf("settlement receipt %s: %v", tx, err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("settlement %s has receipt status %d", tx, receipt.Status)
	}
	var transfers int
	for _, l := range receipt.Logs {
		if l.Address != app.DevTokenAddress || len(l.Topics) != 3 || l.Topics[0] != transferTopic {
			continue
		}
		transfers++
		gotFrom := common.BytesToAddress(l.Topics[1].Bytes())
		gotTo := common.BytesToAddress(l.Topics[2].Bytes())
		value := new(big.Int).SetBytes(l.Data)
		if gotFrom != from || gotTo != to || value.Cmp(big.NewInt(amount)) != 0 {
			t.Errorf("settlement %s transfers %s from %s to %s, want %d from %s to %s", tx, value, gotFrom, gotTo, amount, from, to)
		}
	}
	if transfers != 1 {
		t.Errorf("settlement %s has %d token transfers, want 1", tx, transfers)
	}
}

// stockPayment runs the stock client against the gateway and checks the settlement it reports.
func (e *devEnv) stockPayment(ctx context.Context, t *testing.T, payer devkeys.Account, method, path, body string, price int64) stockResult {
	t.Helper()
	vars := map[string]string{
		"URL":         e.Dev.Info.GatewayURL + path,
		"PRIVATE_KEY": keyHex(payer),
		"NETWORK":     e.Dev.Info.Network,
		"ASSET":       e.Dev.Info.Asset.Address,
		"MAX_AMOUNT":  big.NewInt(price).String(),
		"METHOD":      method,
	}
	if body != "" {
		vars["BODY"] = body
	}
	res := runStockClient(ctx, t, vars)
	if res.Status != http.StatusOK {
		t.Fatalf("%s %s: status %d, body %q, payment response %+v", method, path, res.Status, res.Body, res.PaymentResponse)
	}
	pr := res.PaymentResponse
	if pr == nil {
		t.Fatalf("%s %s: 200 without a PAYMENT-RESPONSE", method, path)
	}
	if !pr.Success || pr.ErrorReason != "" {
		t.Fatalf("%s %s: PAYMENT-RESPONSE %+v, want success", method, path, pr)
	}
	if pr.Network != e.Dev.Info.Network {
		t.Errorf("PAYMENT-RESPONSE network %q, want %q", pr.Network, e.Dev.Info.Network)
	}
	if !strings.EqualFold(pr.Payer, payer.Address.Hex()) {
		t.Errorf("PAYMENT-RESPONSE payer %q, want %s", pr.Payer, payer.Address.Hex())
	}
	e.requireSettledTransfer(ctx, t, pr.Transaction, payer.Address, common.HexToAddress(e.Dev.Info.PayTo), price)
	return res
}

// TestStockClientPaysGateway: the published npm client (@x402/fetch wrapFetchWithPayment) pays
// Payper's gateway end to end with nothing Payper-specific in it.
func TestStockClientPaysGateway(t *testing.T) {
	nodeBinary(t) // fail before starting the chain when the npm side is not installed
	ctx := t.Context()
	env := startDev(t)
	accounts := devkeys.DevAccounts(testAccountsToUse)
	payTo := common.HexToAddress(env.Dev.Info.PayTo)

	t.Run("quote", func(t *testing.T) {
		payer := accounts[stockQuotePayer]
		payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo)

		res := env.stockPayment(ctx, t, payer, http.MethodGet, "/v1/quote", "", quoteAtomicPrice)
		var quote struct{ Symbol, Bid, Ask, Payer string }
		if err := json.Unmarshal([]byte(res.Body), &quote); err != nil {
			t.Fatalf("quote body %q: %v", res.Body, err)
		}
		if quote.Symbol != "PAYPER" || quote.Bid == "" || quote.Ask == "" {
			t.Errorf("quote body %q is not the demo quote", res.Body)
		}
		if !strings.EqualFold(quote.Payer, payer.Address.Hex()) {
			t.Errorf("upstream saw payer %q, want %s", quote.Payer, payer.Address.Hex())
		}
		requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -quoteAtomicPrice)
		requireDelta(t, "payTo", payToBefore, env.balance(ctx, t, payTo), quoteAtomicPrice)
	})

	t.Run("echo", func(t *testing.T) {
		payer := accounts[stockEchoPayer]
		payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo)

		body := `{"message":"hello from the stock client","n":42}`
		res := env.stockPayment(ctx, t, payer, http.MethodPost, "/v1/echo", body, echoAtomicPrice)
		if res.Body != body {
			t.Errorf("echo body %q, want %q", res.Body, body)
		}
		requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -echoAtomicPrice)
		requireDelta(t, "payTo", payToBefore, env.balance(ctx, t, payTo), echoAtomicPrice)
	})

	// The stock client cannot be made to replay a payload, so the best check from its side is
	// that each run signs a fresh authorization and is charged exactly once.
	t.Run("second run pays again", func(t *testing.T) {
		payer := accounts[stockRepeatPayer]
		payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo)

		first := env.stockPayment(ctx, t, payer, http.MethodGet, "/v1/quote", "", quoteAtomicPrice)
		second := env.stockPayment(ctx, t, payer, http.MethodGet, "/v1/quote", "", quoteAtomicPrice)
		if strings.EqualFold(first.PaymentResponse.Transaction, second.PaymentResponse.Transaction) {
			t.Errorf("both runs report settlement %s", first.PaymentResponse.Transaction)
		}
		requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -2*quoteAtomicPrice)
		requireDelta(t, "payTo", payToBefore, env.balance(ctx, t, payTo), 2*quoteAtomicPrice)
	})
}

// TestGoClientPaysStockServer: Payper's Go client pays a seller built from the published npm
// packages (@x402/express middleware, in-process @x402/core facilitator, @x402/evm exact scheme).
// Only the dev chain is used; the gateway is not involved.
func TestGoClientPaysStockServer(t *testing.T) {
	nodeBinary(t)
	ctx := t.Context()
	env := startDev(t)
	accounts := devkeys.DevAccounts(testAccountsToUse)
	payer, payTo := accounts[goClientPayer], accounts[stockServerPayTo]

	baseURL := startStockServer(ctx, t, map[string]string{
		"RPC_URL":         env.Dev.Info.RPCURL,
		"CHAIN_ID":        big.NewInt(0).SetUint64(env.Dev.Info.ChainID).String(),
		"FACILITATOR_KEY": keyHex(accounts[stockFacilitator]),
		"ASSET":           env.Dev.Info.Asset.Address,
		"ASSET_NAME":      env.Dev.Info.Asset.Name,
		"ASSET_VERSION":   env.Dev.Info.Asset.Version,
		"PRICE":           big.NewInt(stockServerPrice).String(),
		"PAY_TO":          payTo.Address.Hex(),
		"PORT":            "0",
	})

	payerBefore, payToBefore := env.balance(ctx, t, payer.Address), env.balance(ctx, t, payTo.Address)
	facilitatorBefore := env.balance(ctx, t, accounts[stockFacilitator].Address)

	var payments []client.Payment
	httpClient := &http.Client{Transport: &client.Transport{
		Payers:        []client.Payer{&exact.Signer{Key: payer.Key}},
		MaxPerRequest: big.NewInt(stockServerPrice),
		Networks:      []string{env.Dev.Info.Network},
		Assets:        []string{env.Dev.Info.Asset.Address},
		OnPayment:     func(p client.Payment) { payments = append(payments, p) },
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/paid", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET /paid: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /paid: status %d, body %q, PAYMENT-RESPONSE %q", resp.StatusCode, body, resp.Header.Get("PAYMENT-RESPONSE"))
	}
	var content struct{ Message string }
	if err := json.Unmarshal(body, &content); err != nil || content.Message != "paid content from the stock x402 server" {
		t.Errorf("body %q is not the stock server's content (%v)", body, err)
	}

	settlement, err := client.SettlementFrom(resp)
	if err != nil || settlement == nil {
		t.Fatalf("PAYMENT-RESPONSE %q: %v", resp.Header.Get("PAYMENT-RESPONSE"), err)
	}
	if !settlement.Success || settlement.Network != env.Dev.Info.Network || !strings.EqualFold(settlement.Payer, payer.Address.Hex()) {
		t.Errorf("settlement %+v, want success on %s by %s", settlement, env.Dev.Info.Network, payer.Address.Hex())
	}
	if len(payments) != 1 || payments[0].Settlement == nil || payments[0].Settlement.Transaction != settlement.Transaction {
		t.Errorf("OnPayment saw %+v, want one payment settled in %s", payments, settlement.Transaction)
	} else if payments[0].Requirement.Amount != big.NewInt(stockServerPrice).String() {
		t.Errorf("paid requirement amount %q, want %d", payments[0].Requirement.Amount, stockServerPrice)
	}
	env.requireSettledTransfer(ctx, t, settlement.Transaction, payer.Address, payTo.Address, stockServerPrice)

	requireDelta(t, "payer", payerBefore, env.balance(ctx, t, payer.Address), -stockServerPrice)
	requireDelta(t, "payTo", payToBefore, env.balance(ctx, t, payTo.Address), stockServerPrice)
	requireDelta(t, "facilitator", facilitatorBefore, env.balance(ctx, t, accounts[stockFacilitator].Address), 0)
}
