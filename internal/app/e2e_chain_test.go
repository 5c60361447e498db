package app

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/faultrpc"
	"github.com/payper/payper/internal/keyfile"
	"github.com/payper/payper/store"
)

// faultProxy puts a fault-injecting proxy in front of the env's chain.
func (e *env) faultProxy() *faultrpc.Proxy {
	e.t.Helper()
	p, err := faultrpc.Start(e.dev.Info.RPCURL)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p
}

// settlerKeyFile writes key to a key file for a gateway's settlerKeyFile.
func settlerKeyFile(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "settler.key")
	if err := keyfile.Write(path, key); err != nil {
		t.Fatal(err)
	}
	return path
}

// payConcurrently pays url once per payer at the same time and returns the results.
func payConcurrently(t *testing.T, url string, payers ...int) []result {
	t.Helper()
	headers := make([]string, len(payers))
	for i, p := range payers {
		headers[i] = encode(t, signPayment(t, account(p).Key, challenge(t, "GET", url)))
	}
	results := make([]result, len(payers))
	var wg sync.WaitGroup
	for i := range payers {
		wg.Go(func() { results[i] = send(t, "GET", url, headers[i]) })
	}
	wg.Wait()
	return results
}

// TestSettlementsLandAfterANonceGap (defect 5): the first settlement transaction is dropped on
// its way to the node (the endpoint answered, the node never saw it), so the settler's nonce runs
// ahead of the chain and the next settlement queues behind a nonce nothing will mine. Both
// payments must still be settled and served within seconds, not end "settlement_pending".
func TestSettlementsLandAfterANonceGap(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	rpc := e.faultProxy()
	gw, gateway := e.startGatewayFull(func(c *config.Config) {
		c.RPCURL = rpc.URL()
		c.Upstream = up.server.URL
		c.SettlerKeyFile = settlerKeyFile(t, account(4).Key)
		c.SettlementTimeout = 10 * time.Second
	})
	url := gateway + "/v1/quote"
	rpc.Add(faultrpc.DropSends(1))
	began := time.Now()
	results := payConcurrently(t, url, 5, 6)
	elapsed := time.Since(began)
	for i, r := range results {
		if r.status != http.StatusOK || r.settlement == nil || !r.settlement.Success {
			t.Fatalf("payment %d after %s: %d %s", i, elapsed, r.status, r.body)
		}
	}
	t.Logf("both payments settled in %s", elapsed.Round(time.Millisecond))
	if elapsed > 8*time.Second {
		t.Fatalf("settling took %s", elapsed)
	}
	for _, p := range []int{5, 6} {
		payments, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: account(p).Address.Hex()})
		if err != nil || len(payments) != 1 || payments[0].Status != store.StatusSettled {
			t.Fatalf("records of payer %d: %+v %v", p, payments, err)
		}
	}
}

// TestStuckSettlementReplaced (defect 5): every broadcast of the first transaction signed at a
// nonce is lost, as one priced below what miners take is never mined. After
// settlement.replaceAfter it is replaced; the payment is settled by the replacement, which the
// record and the PAYMENT-RESPONSE name, and the payer is charged once.
func TestStuckSettlementReplaced(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	rpc := e.faultProxy()
	gw, gateway := e.startGatewayFull(func(c *config.Config) {
		c.RPCURL = rpc.URL()
		c.Upstream = up.server.URL
		c.SettlerKeyFile = settlerKeyFile(t, account(4).Key)
		c.SettlementTimeout = 10 * time.Second
		c.Settlement.ReplaceAfter = time.Second
	})
	rpc.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", If: rpc.FirstSignedAt(), Do: faultrpc.Drop()})
	payer := account(5)
	before := e.balance(payer.Address)
	url := gateway + "/v1/quote"
	r := send(t, "GET", url, encode(t, signPayment(t, payer.Key, challenge(t, "GET", url))))
	if r.status != http.StatusOK || r.settlement == nil || !r.settlement.Success {
		t.Fatalf("paid request: %d %s", r.status, r.body)
	}
	first := rpc.Sent()[0]
	if first.Forwarded || common.HexToHash(r.settlement.Transaction) == first.Hash {
		t.Fatalf("settled by %s; the first transaction %+v never reached the node", r.settlement.Transaction, first)
	}
	payments, err := gw.Store().ListPayments(context.Background(), store.PaymentFilter{Payer: payer.Address.Hex()})
	if err != nil || len(payments) != 1 || payments[0].Status != store.StatusSettled || !strings.EqualFold(payments[0].TxHash, r.settlement.Transaction) {
		t.Fatalf("record %+v %v, want settled by %s", payments, err, r.settlement.Transaction)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
		t.Fatalf("payer spent %s, want 1000", spent)
	}
}

// TestSettlementsFailOverToSecondEndpoint: two endpoints in front of one chain; the first goes
// down, and payments are verified and settled through the second.
func TestSettlementsFailOverToSecondEndpoint(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	first, second := e.faultProxy(), e.faultProxy()
	_, gateway := e.startGatewayFull(func(c *config.Config) {
		c.RPCURL = first.URL()
		c.RPCURLs = []string{second.URL()}
		c.Upstream = up.server.URL
		c.SettlerKeyFile = settlerKeyFile(t, account(4).Key)
	})
	url := gateway + "/v1/quote"
	for i, payer := range []int{5, 6, 7} {
		if i == 1 {
			if err := first.SetDown(faultrpc.RefuseConnections); err != nil {
				t.Fatal(err)
			}
		}
		r := send(t, "GET", url, encode(t, signPayment(t, account(payer).Key, challenge(t, "GET", url))))
		if r.status != http.StatusOK || r.settlement == nil || !r.settlement.Success {
			t.Fatalf("payment %d: %d %s", i, r.status, r.body)
		}
	}
	if n := second.Calls("eth_sendRawTransaction"); n != 2 {
		t.Fatalf("%d settlements went through the second endpoint, want 2", n)
	}
}

// TestGatewayRefusesUnfundedSettler (defect 5): a settler without ETH cannot settle anything; the
// gateway refuses to start and says how to fund it.
func TestGatewayRefusesUnfundedSettler(t *testing.T) {
	e := startEnv(t, "")
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := devConfig(DevOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}, e.dev.Info.RPCURL, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SettlerKeyFile = settlerKeyFile(t, key)
	gw, err := NewGateway(context.Background(), cfg, nil)
	if err == nil {
		gw.Close()
		t.Fatal("a gateway whose settler holds no ETH started")
	}
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	for _, want := range []string{addr, "0 ETH", "chain 1337", "send it about"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestExactRefusedWhileSettlerCannotPay: a settler with some ETH, but less than one settlement
// reserves, starts (channels need no gas per request) and logs the problem; exact payments get
// 503 before anything is verified or reserved, and the same payment works once it is funded.
func TestExactRefusedWhileSettlerCannotPay(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	settler := crypto.PubkeyToAddress(key.PublicKey)
	fundETH(t, e, settler, big.NewInt(1e9))
	_, gateway := e.startGatewayFull(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.SettlerKeyFile = settlerKeyFile(t, key)
	})
	url := gateway + "/v1/quote"
	payer := account(5)
	header := encode(t, signPayment(t, payer.Key, challenge(t, "GET", url)))
	r := send(t, "GET", url, header)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || up.calls.Load() != 0 {
		t.Fatalf("gas-less settler: %d %s (upstream called %d times)", r.status, r.body, up.calls.Load())
	}
	fundETH(t, e, settler, big.NewInt(1e18))
	deadline := time.Now().Add(15 * time.Second)
	for r = send(t, "GET", url, header); r.status == http.StatusServiceUnavailable && time.Now().Before(deadline); r = send(t, "GET", url, header) {
		time.Sleep(200 * time.Millisecond) // the balance watcher looks again every 2 s while short
	}
	if r.status != http.StatusOK {
		t.Fatalf("after funding, the same payment: %d %s", r.status, r.body)
	}
}

// fundETH sends wei from test account 9 to addr and waits for it to be mined.
func fundETH(t *testing.T, e *env, addr common.Address, wei *big.Int) {
	t.Helper()
	ctx := context.Background()
	eth, err := ethclient.Dial(e.dev.Info.RPCURL)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	from := account(9)
	nonce, err := eth.PendingNonceAt(ctx, from.Address)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11), Gas: 21000, To: &addr, Value: wei,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eth.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chain.WaitMined(ctx, tx.Hash()); err != nil {
		t.Fatal(err)
	}
}
