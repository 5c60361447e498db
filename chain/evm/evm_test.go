package evm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/testusdc"
)

var tokenAddr = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")

// startChain runs a dev chain with the test token, which credits accounts 0–3.
func startChain(t *testing.T) *devchain.Chain {
	t.Helper()
	accts := devkeys.DevAccounts(4)
	token := testusdc.NewTestUSDC()
	alloc := map[common.Address]*big.Int{}
	var mints []devchain.GenesisCall
	for _, a := range accts {
		alloc[a.Address] = new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))
		mints = append(mints, devchain.GenesisCall{From: accts[0].Address, Data: token.PackMint(a.Address, big.NewInt(1_000_000))})
	}
	chain, err := devchain.Start(context.Background(), devchain.Config{
		ListenAddr: "127.0.0.1:0", Alloc: alloc,
		Contracts: []devchain.GenesisContract{{Address: tokenAddr, Deployer: accts[0].Address,
			InitCode: append(testusdc.CreationCode(), token.PackConstructor(accts[0].Address)...), Calls: mints}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	return chain
}

func TestDialChecksChainID(t *testing.T) {
	chain := startChain(t)
	if _, err := Dial(context.Background(), chain.RPCURL(), big.NewInt(8453), Options{}); !errors.Is(err, ErrChainIDMismatch) {
		t.Fatalf("got %v, want ErrChainIDMismatch", err)
	}
	c, err := Dial(context.Background(), chain.RPCURL(), big.NewInt(1337), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Send(context.Background(), tokenAddr, nil, nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only send: %v", err)
	}
	name, err := c.TokenName(context.Background(), tokenAddr)
	if err != nil || name != "USD Coin" {
		t.Fatalf("name %q %v", name, err)
	}
}

func TestSendRecordsHashBeforeBroadcastAndReportsReverts(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	sender := devkeys.DevAccounts(2)[1]
	c, err := Dial(ctx, chain.RPCURL(), nil, Options{SettlerKey: sender.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	var recorded common.Hash
	hash, err := c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(77)), func(h common.Hash) error { recorded = h; return nil })
	if err != nil || hash != recorded {
		t.Fatalf("send: %v (hash %s, recorded %s)", err, hash, recorded)
	}
	receipt, err := c.WaitMined(ctx, hash)
	if err != nil || receipt.Status != 1 {
		t.Fatalf("receipt: %v", err)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 77 {
		t.Fatalf("balance %s", b)
	}

	// A call that would revert is refused before signing, with the contract's reason.
	called := false
	_, err = c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackMint(to, big.NewInt(1)), func(common.Hash) error { called = true; return nil })
	var rev *RevertError
	if !errors.As(err, &rev) || !errors.Is(err, ErrNotSent) || rev.Reason != testusdc.ReasonNotMinter || called {
		t.Fatalf("revert: %v (write-ahead called: %v)", err, called)
	}

	// A failing write-ahead record stops the broadcast.
	nonceBefore := mustNonce(t, c)
	_, err = c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(1)), func(common.Hash) error { return errors.New("store down") })
	if !errors.Is(err, ErrNotSent) || mustNonce(t, c) != nonceBefore {
		t.Fatalf("write-ahead failure: %v", err)
	}
}

func mustNonce(t *testing.T, c *Client) uint64 {
	n, err := c.eth.PendingNonceAt(context.Background(), c.SettlerAddress())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTwoSendersShareAKey: two clients (two gateway replicas) send from one key at once; nonce
// conflicts are retried and every transaction is mined.
func TestTwoSendersShareAKey(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	key := devkeys.DevAccounts(3)[2].Key
	var clients [2]*Client
	for i := range clients {
		c, err := Dial(ctx, chain.RPCURL(), nil, Options{SettlerKey: key})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000000b1")
	const each = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i := 0; i < 2*each; i++ {
		wg.Add(1)
		go func(c *Client, amount int64) {
			defer wg.Done()
			// Distinct amounts: identical calls from one key at one nonce would be one transaction.
			hash, err := c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(amount)), nil)
			if err == nil {
				_, err = c.WaitMined(ctx, hash)
			}
			errs <- err
		}(clients[i%2], int64(1)<<i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("send: %v", err)
		}
	}
	if b, _ := clients[0].BalanceOf(ctx, tokenAddr, to); b.Int64() != 1<<(2*each)-1 {
		t.Fatalf("received %b, want every one of the %d transfers", b, 2*each)
	}
}

// TestBroadcastOutcomeUnknown: the node accepts the transaction but the answer is lost. The send
// reports ErrBroadcastUnknown with the hash it recorded first, and that hash is mined.
func TestBroadcastOutcomeUnknown(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	target, _ := url.Parse(chain.RPCURL())
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte("eth_sendRawTransaction")) {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // the node gets it...
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return // ...the answer does not
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	c, err := Dial(ctx, proxy.URL, nil, Options{SettlerKey: devkeys.DevAccounts(4)[3].Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var recorded common.Hash
	to := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	hash, err := c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(5)), func(h common.Hash) error { recorded = h; return nil })
	if !errors.Is(err, ErrBroadcastUnknown) || hash != recorded {
		t.Fatalf("got %v (hash %s recorded %s)", err, hash, recorded)
	}
	if r, err := c.WaitMined(ctx, recorded); err != nil || r.Status != 1 {
		t.Fatalf("the recorded transaction was not mined: %v", err)
	}
}
