package evm

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/faultrpc"
	"github.com/payper/payper/settle/account"
	"github.com/payper/payper/settle/txn"
)

var tokenAddr = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")

// startChain runs a dev chain with the test token, which credits accounts 0–3.
func startChain(t testing.TB) *devchain.Chain {
	t.Helper()
	return startChainWith(t, devchain.Config{})
}

// startChainWith is startChain with cfg's Period and Unpaced.
func startChainWith(t testing.TB, cfg devchain.Config) *devchain.Chain {
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
		ListenAddr: "127.0.0.1:0", Alloc: alloc, Period: cfg.Period, Unpaced: cfg.Unpaced,
		Contracts: []devchain.GenesisContract{{Address: tokenAddr, Deployer: accts[0].Address,
			InitCode: append(testusdc.CreationCode(), token.PackConstructor(accts[0].Address)...), Calls: mints},
			{Address: multicall3.Address, Deployer: accts[0].Address, InitCode: multicall3.CreationCode()}},
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
	var rev *txn.RevertError
	if !errors.As(err, &rev) || !errors.Is(err, txn.ErrNotSent) || rev.Reason != testusdc.ReasonNotMinter || called {
		t.Fatalf("revert: %v (write-ahead called: %v)", err, called)
	}

	// A failing write-ahead record stops the broadcast.
	nonceBefore := mustNonce(t, c)
	_, err = c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(1)), func(common.Hash) error { return errors.New("store down") })
	if !errors.Is(err, txn.ErrNotSent) || mustNonce(t, c) != nonceBefore {
		t.Fatalf("write-ahead failure: %v", err)
	}
}

func mustNonce(t *testing.T, c *Client) uint64 {
	n, err := c.eps[0].eth.PendingNonceAt(context.Background(), c.SettlerAddress())
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

// TestBroadcastOutcomeUnknown: the node accepts the transaction but the client gets no usable
// answer: a lost response, or a JSON-RPC error an endpoint gives after forwarding. Each send
// reports txn.ErrBroadcastUnknown with the hash it recorded first, and that hash is mined.
func TestBroadcastOutcomeUnknown(t *testing.T) {
	proxy, dial := faultyChain(t)
	ctx := context.Background()
	answers := []struct {
		name   string
		answer faultrpc.Action
	}{
		{"gateway timeout", faultrpc.HTTPStatus(http.StatusGatewayTimeout)},
		{"connection closed", faultrpc.Hangup()},
		{"internal error", faultrpc.RPCError(-32603, "internal error")},
		{"rate limited", faultrpc.RPCError(429, "Too Many Requests")},
		{"upstream timeout", faultrpc.RPCError(-32000, "request timed out")},
	}
	c := dial(Options{SettlerKey: devkeys.DevAccounts(4)[3].Key})
	to := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	want := int64(0)
	for i, a := range answers {
		// The node gets it; the answer does not say so.
		proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Times: 1, Do: faultrpc.ForwardThen(a.answer)})
		var recorded common.Hash
		hash, err := c.Send(ctx, tokenAddr, transferData(to, int64(i+1)), func(h common.Hash) error { recorded = h; return nil })
		if !errors.Is(err, txn.ErrBroadcastUnknown) || errors.Is(err, txn.ErrNotSent) || hash != recorded {
			t.Fatalf("%s: got %v (hash %s recorded %s)", a.name, err, hash, recorded)
		}
		if r, err := c.WaitMined(ctx, recorded); err != nil || r.Status != 1 {
			t.Fatalf("%s: the recorded transaction was not mined: %v", a.name, err)
		}
		want += int64(i + 1)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != want {
		t.Fatalf("balance %s, want every transfer once", b)
	}
}

// TestUnfundedSettlerIsNotSent: a settler without ETH for gas is refused before anything is
// signed or recorded, with an error that says how to fund it, and nothing reaches the chain.
func TestUnfundedSettlerIsNotSent(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	unfunded := devkeys.DevAccounts(6)[5] // test mnemonic account 5, not in the genesis alloc
	c, err := Dial(ctx, chain.RPCURL(), nil, Options{SettlerKey: unfunded.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recorded := false
	_, err = c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(unfunded.Address, big.NewInt(0)), func(common.Hash) error { recorded = true; return nil })
	var funding *account.FundingError
	if !errors.Is(err, txn.ErrNotSent) || !errors.Is(err, txn.ErrSettlerUnfunded) || !errors.As(err, &funding) || recorded {
		t.Fatalf("got %v (recorded %v), want txn.ErrNotSent with a account.FundingError before the write-ahead record", err, recorded)
	}
	if msg := err.Error(); !strings.Contains(msg, unfunded.Address.Hex()) || !strings.Contains(msg, "chain 1337") || !strings.Contains(msg, "send it about") {
		t.Fatalf("funding message %q does not say how to fund the settler", msg)
	}
	if !errors.Is(c.SettlerFundsError(), txn.ErrSettlerUnfunded) {
		t.Fatal("the client does not report the settler unfunded after the refusal")
	}
	if n := mustNonce(t, c); n != 0 {
		t.Fatalf("nonce %d after a refusal", n)
	}
}

// TestNodeRefusalIsNotSent: a node's own refusal of a transaction it does not hold is txn.ErrNotSent,
// and an "insufficient funds" one becomes a funding error once the balance is read again.
func TestNodeRefusalIsNotSent(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	proxy, err := faultrpc.Start(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	c, err := Dial(ctx, proxy.URL(), nil, Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := testusdc.NewTestUSDC().PackTransfer(common.Address{0xb5}, big.NewInt(1))
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Times: 1, Do: faultrpc.RPCError(-32000, "intrinsic gas too low")})
	var recorded common.Hash
	if _, err := c.Send(ctx, tokenAddr, data, func(h common.Hash) error { recorded = h; return nil }); !errors.Is(err, txn.ErrNotSent) || errors.Is(err, txn.ErrBroadcastUnknown) {
		t.Fatalf("refusal: %v", err)
	}
	if _, _, err := c.eps[0].eth.TransactionByHash(ctx, recorded); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("refused transaction is known to the node: %v", err)
	}
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Times: 1, Do: faultrpc.RPCError(-32000, "insufficient funds for gas * price + value: balance 0")})
	if _, err := c.Send(ctx, tokenAddr, data, nil); !errors.Is(err, txn.ErrNotSent) || !errors.Is(err, txn.ErrSettlerUnfunded) {
		t.Fatalf("funds refusal: %v", err)
	}
	if c.SettlerFundsError() != nil {
		t.Fatal("a funded settler is reported unfunded")
	}
	if hash, err := c.Send(ctx, tokenAddr, data, nil); err != nil {
		t.Fatalf("the nonce of refused transactions was not reused: %v", err)
	} else if _, err := c.WaitMined(ctx, hash); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalOfOwnTransaction: an endpoint forwards the transaction, it is mined, and the
// endpoint's retry gets the node's "nonce too low" about that very transaction. The send
// succeeds with that hash and does not resend at a fresh nonce.
func TestRefusalOfOwnTransaction(t *testing.T) {
	proxy, dial := faultyChain(t)
	ctx := context.Background()
	c := dial(Options{SettlerKey: devkeys.DevAccounts(3)[2].Key})
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", Times: 1, Do: faultrpc.Retried()})
	to := common.HexToAddress("0x00000000000000000000000000000000000000b3")
	hash, err := c.Send(ctx, tokenAddr, transferData(to, 9), nil)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if n := proxy.Calls("eth_sendRawTransaction"); n != 1 {
		t.Fatalf("%d sends, want 1: a refusal about the transaction itself is not a reason to resend", n)
	}
	if r, err := c.WaitMined(ctx, hash); err != nil || r.Status != 1 {
		t.Fatalf("receipt: %v", err)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 9 {
		t.Fatalf("balance %s, want one transfer", b)
	}
}

// TestWaitMinedCountsConfirmations: with two confirmations a receipt is final only once a block
// is built on its own, and the recheck finds it in the same block.
func TestWaitMinedCountsConfirmations(t *testing.T) {
	chain := startChain(t)
	ctx := context.Background()
	c, err := Dial(ctx, chain.RPCURL(), nil, Options{SettlerKey: devkeys.DevAccounts(2)[1].Key, Confirmations: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := common.HexToAddress("0x00000000000000000000000000000000000000b4")
	first, err := c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	mined, err := c.eps[0].eth.TransactionReceipt(ctx, first)
	for errors.Is(err, ethereum.NotFound) {
		time.Sleep(5 * time.Millisecond)
		mined, err = c.eps[0].eth.TransactionReceipt(ctx, first)
	}
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitMined(wctx, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("one block deep counted as final: %v", err)
	}
	if _, err := c.Send(ctx, tokenAddr, testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(2)), nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.WaitMined(ctx, first)
	if err != nil || r.BlockHash != mined.BlockHash {
		t.Fatalf("receipt %v, err %v; want block %s", r, err, mined.BlockHash)
	}
}
