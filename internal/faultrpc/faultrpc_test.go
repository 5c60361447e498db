package faultrpc

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
)

var (
	chainOnce sync.Once
	chainURL  string
	chainErr  error
)

// node is one dev chain shared by the tests of this file; each test gets its own proxy.
func node(t *testing.T) string {
	t.Helper()
	chainOnce.Do(func() {
		alloc := map[common.Address]*big.Int{devkeys.DevAccounts(1)[0].Address: big.NewInt(1e18)}
		var c *devchain.Chain
		c, chainErr = devchain.Start(context.Background(), devchain.Config{ListenAddr: "127.0.0.1:0", Alloc: alloc})
		if chainErr == nil {
			chainURL = c.RPCURL() // left running until the test binary exits
		}
	})
	if chainErr != nil {
		t.Fatal(chainErr)
	}
	return chainURL
}

func start(t *testing.T) (*Proxy, *rpc.Client) {
	t.Helper()
	p, err := Start(node(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := rpc.Dial(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return p, c
}

func chainID(ctx context.Context, c *rpc.Client) (string, error) {
	var id string
	err := c.CallContext(ctx, &id, "eth_chainId")
	return id, err
}

func TestForwardsAndCounts(t *testing.T) {
	p, c := start(t)
	for range 3 {
		if id, err := chainID(t.Context(), c); err != nil || id != "0x539" {
			t.Fatalf("chain id %q, %v", id, err)
		}
	}
	if n := p.Calls("eth_chainId"); n != 3 {
		t.Fatalf("counted %d calls, want 3", n)
	}
}

func TestCallFaults(t *testing.T) {
	p, c := start(t)
	ctx := t.Context()

	p.Add(WrongChainID(8453))
	if id, _ := chainID(ctx, c); id != "0x2105" {
		t.Fatalf("wrong chain id: %q", id)
	}
	p.Reset()

	p.Add(Fault{Method: "eth_chainId", Skip: 1, Times: 1, Do: RPCError(-32000, "nonce too low")})
	_, first := chainID(ctx, c)
	_, second := chainID(ctx, c)
	_, third := chainID(ctx, c)
	var rpcErr rpc.Error
	if first != nil || !errors.As(second, &rpcErr) || rpcErr.ErrorCode() != -32000 || second.Error() != "nonce too low" || third != nil {
		t.Fatalf("skip 1, fail once: %v / %v / %v", first, second, third)
	}

	p.Add(Fault{Method: "eth_chainId", Times: 1, Do: HTTPStatus(503)})
	var httpErr rpc.HTTPError
	if _, err := chainID(ctx, c); !errors.As(err, &httpErr) || httpErr.StatusCode != 503 {
		t.Fatalf("HTTP 503: %v", err)
	}

	p.Add(Fault{Method: "eth_chainId", Times: 1, Do: Hangup()})
	if _, err := chainID(ctx, c); err == nil || errors.As(err, &rpcErr) || errors.As(err, &httpErr) {
		t.Fatalf("hang-up: %v, want a transport error", err)
	}

	p.Add(Fault{Method: "eth_chainId", Times: 1, Do: Delay(150 * time.Millisecond)})
	began := time.Now()
	if _, err := chainID(ctx, c); err != nil || time.Since(began) < 150*time.Millisecond {
		t.Fatalf("delay: %v after %s", err, time.Since(began))
	}

	var head, lagged hexutil.Uint64
	if err := c.CallContext(ctx, &head, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	p.Add(Fault{Method: "eth_blockNumber", Times: 1, Do: LagBlocks(uint64(head) + 5).Do})
	if err := c.CallContext(ctx, &lagged, "eth_blockNumber"); err != nil || lagged != 0 {
		t.Fatalf("lagging block number %d (%v), want 0", lagged, err)
	}
}

// TestBatchMembers: faults apply to each member of a batch; the others reach the node.
func TestBatchMembers(t *testing.T) {
	p, c := start(t)
	p.Add(Fault{Method: "eth_blockNumber", Do: RPCError(-32603, "internal error")}, NullReceipts(1))
	var id string
	var head hexutil.Uint64
	receipt := map[string]any{"sentinel": true}
	batch := []rpc.BatchElem{
		{Method: "eth_chainId", Result: &id},
		{Method: "eth_blockNumber", Result: &head},
		{Method: "eth_getTransactionReceipt", Args: []any{common.Hash{1}}, Result: &receipt},
	}
	if err := c.BatchCallContext(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if batch[0].Error != nil || id != "0x539" {
		t.Fatalf("chain id member: %q %v", id, batch[0].Error)
	}
	if batch[1].Error == nil || batch[1].Error.Error() != "internal error" {
		t.Fatalf("faulted member: %v", batch[1].Error)
	}
	if batch[2].Error != nil || receipt != nil {
		t.Fatalf("null receipt member: %v %v", receipt, batch[2].Error)
	}
	if p.Calls("eth_blockNumber") != 1 || p.Calls("eth_chainId") != 1 {
		t.Fatal("batch members not counted")
	}
}

func signedTransfer(t *testing.T, c *rpc.Client, nonce uint64, tip int64) (string, *types.Transaction) {
	t.Helper()
	acct := devkeys.DevAccounts(1)[0]
	to := common.Address{0xbe}
	tx, err := types.SignNewTx(acct.Key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: nonce, GasTipCap: big.NewInt(tip), GasFeeCap: big.NewInt(1e10), Gas: 21000, To: &to, Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	return hexutil.Encode(raw), tx
}

func nonceOf(t *testing.T, c *rpc.Client) uint64 {
	var n hexutil.Uint64
	if err := c.CallContext(t.Context(), &n, "eth_getTransactionCount", devkeys.DevAccounts(1)[0].Address, "pending"); err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

func known(t *testing.T, c *rpc.Client, h common.Hash) bool {
	var tx map[string]any
	if err := c.CallContext(t.Context(), &tx, "eth_getTransactionByHash", h); err != nil {
		t.Fatal(err)
	}
	return tx != nil
}

// TestSendFaults: a dropped send is answered with its hash but never reaches the node; a send
// whose answer is lost does; the first transaction signed at a nonce can be dropped for good
// while its replacement passes; Sent records each.
func TestSendFaults(t *testing.T) {
	p, c := start(t)
	ctx := t.Context()
	nonce := nonceOf(t, c)

	p.Add(DropSends(1))
	raw, tx := signedTransfer(t, c, nonce, 1)
	var hash common.Hash
	if err := c.CallContext(ctx, &hash, "eth_sendRawTransaction", raw); err != nil || hash != tx.Hash() {
		t.Fatalf("dropped send answered %s, %v", hash, err)
	}
	if known(t, c, tx.Hash()) {
		t.Fatal("the node got a dropped transaction")
	}

	p.Add(LoseSendAnswers(1))
	if err := c.CallContext(ctx, &hash, "eth_sendRawTransaction", raw); err == nil {
		t.Fatal("a lost answer came back")
	}
	if !known(t, c, tx.Hash()) {
		t.Fatal("the node did not get a send whose answer was lost")
	}

	p.Add(Fault{Method: "eth_sendRawTransaction", If: p.FirstSignedAt(), Do: Drop()})
	first, firstTx := signedTransfer(t, c, nonce+1, 1)
	for range 2 {
		if err := c.CallContext(ctx, &hash, "eth_sendRawTransaction", first); err != nil {
			t.Fatal(err)
		}
	}
	replacement, replacementTx := signedTransfer(t, c, nonce+1, 2)
	if err := c.CallContext(ctx, &hash, "eth_sendRawTransaction", replacement); err != nil {
		t.Fatal(err)
	}
	if known(t, c, firstTx.Hash()) || !known(t, c, replacementTx.Hash()) {
		t.Fatal("the first transaction at a nonce passed, or its replacement did not")
	}
	sent := p.Sent()
	want := []bool{false, true, false, false, true}
	if len(sent) != len(want) {
		t.Fatalf("recorded %d sends, want %d", len(sent), len(want))
	}
	for i, s := range sent {
		if s.Forwarded != want[i] {
			t.Errorf("send %d (%s): forwarded %v, want %v", i, s.Hash, s.Forwarded, want[i])
		}
	}
}

// TestRetried: the endpoint forwards a send, then forwards it again once the node mined it, and
// answers with the node's refusal of that retry.
func TestRetried(t *testing.T) {
	p, c := start(t)
	p.Add(Fault{Method: "eth_sendRawTransaction", Do: Retried()})
	raw, tx := signedTransfer(t, c, nonceOf(t, c), 1)
	var hash common.Hash
	err := c.CallContext(t.Context(), &hash, "eth_sendRawTransaction", raw)
	if err == nil || !strings.Contains(err.Error(), "nonce too low") || !known(t, c, tx.Hash()) {
		t.Fatalf("retried send: %v, want the node's nonce too low about the mined transaction", err)
	}
}

func TestDownAndUp(t *testing.T) {
	p, c := start(t)
	ctx := t.Context()
	if err := p.SetDown(RefuseConnections); err != nil {
		t.Fatal(err)
	}
	if _, err := chainID(ctx, c); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("down: %v, want connection refused", err)
	}
	if err := p.SetDown(CloseConnections); err != nil {
		t.Fatal(err)
	}
	if _, err := chainID(ctx, c); err == nil {
		t.Fatal("hang-up mode answered")
	}
	if err := p.SetDown(Up); err != nil {
		t.Fatal(err)
	}
	if id, err := chainID(ctx, c); err != nil || id != "0x539" {
		t.Fatalf("back up: %q %v", id, err)
	}
}
