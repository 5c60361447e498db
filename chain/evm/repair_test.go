package evm

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/faultrpc"
	"github.com/payper/payper/settle/account"
)

// faultyChain is a dev chain behind a fault proxy.
func faultyChain(t *testing.T) (*faultrpc.Proxy, func(Options) *Client) {
	t.Helper()
	chain := startChain(t)
	proxy, err := faultrpc.Start(chain.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return proxy, func(opts Options) *Client {
		c, err := Dial(context.Background(), proxy.URL(), big.NewInt(1337), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
}

func transferData(to common.Address, amount int64) []byte {
	return testusdc.NewTestUSDC().PackTransfer(to, big.NewInt(amount))
}

// withinSeconds is how long a repaired settlement may take: a couple of rechecks, far below the
// 30 s a settlement waits before it is answered "pending".
func withinSeconds(t *testing.T, n time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), n*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestNonceGapRepaired (defect 5): a sent transaction is dropped (the node answered but never
// got it), so the allocator runs ahead of the chain and the next transaction queues behind a
// nonce nobody will mine. Both must still land within seconds, each exactly once.
func TestNonceGapRepaired(t *testing.T) {
	proxy, dial := faultyChain(t)
	c := dial(Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	to := common.Address{0xa1}
	proxy.Add(faultrpc.DropSends(1))
	first, err := c.Send(context.Background(), tokenAddr, transferData(to, 1), nil)
	if err != nil {
		t.Fatalf("first send: %v", err)
	}
	second, err := c.Send(context.Background(), tokenAddr, transferData(to, 2), nil)
	if err != nil {
		t.Fatalf("second send: %v", err)
	}
	ctx := withinSeconds(t, 8)
	began := time.Now()
	if _, err := c.WaitMined(ctx, second); err != nil {
		t.Fatalf("the transaction behind the gap did not land: %v", err)
	}
	if _, err := c.WaitMined(ctx, first); err != nil {
		t.Fatalf("the dropped transaction did not land: %v", err)
	}
	t.Logf("both landed %s after the wait began", time.Since(began).Round(time.Millisecond))
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 3 {
		t.Fatalf("balance %s, want 3: each transfer once", b)
	}
}

// TestCachedNonceAheadAfterRewind (defect 5): the chain loses blocks the settler's transactions
// were mined in (simulated by pointing the endpoint at a fresh chain with the same genesis). The
// allocator is then ahead of the chain: the lost transactions are re-broadcast from what the
// sender kept, and the next settlement lands at once instead of waiting behind a gap forever.
func TestCachedNonceAheadAfterRewind(t *testing.T) {
	proxy, dial := faultyChain(t)
	c := dial(Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	to := common.Address{0xa2}
	var sent []common.Hash
	for i := range 3 {
		hash, err := c.Send(context.Background(), tokenAddr, transferData(to, int64(1)<<i), nil)
		sent = append(sent, hash)
		if err == nil {
			_, err = c.WaitMined(context.Background(), hash)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rewound := startChain(t)
	if err := proxy.Retarget(rewound.RPCURL()); err != nil {
		t.Fatal(err)
	}

	ctx := withinSeconds(t, 8)
	hash, err := c.Send(ctx, tokenAddr, transferData(to, 8), nil)
	if err != nil {
		t.Fatalf("send after the rewind: %v", err)
	}
	if _, err := c.WaitMined(ctx, hash); err != nil {
		t.Fatalf("the settlement after a rewind did not land: %v", err)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 1+2+4+8 {
		t.Fatalf("balance %s on the rewound chain, want 15: the lost transfers restored, each once", b)
	}

	// Without the lost transactions at hand (a sender that never held them), the allocator
	// simply moves back to the chain's nonce.
	rewoundAgain := startChain(t)
	if err := proxy.Retarget(rewoundAgain.RPCURL()); err != nil {
		t.Fatal(err)
	}
	for _, h := range append(sent, hash) {
		c.sender.Forget(h)
	}
	hash, err = c.Send(ctx, tokenAddr, transferData(to, 16), nil)
	if err == nil {
		_, err = c.WaitMined(ctx, hash)
	}
	if err != nil {
		t.Fatalf("the settlement after a second rewind did not land: %v", err)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 16 {
		t.Fatalf("balance %s, want 16", b)
	}
}

// TestNonceGapFilled: a nonce the sender holds nothing for (lost with its transaction) sits below
// one it holds; a 0-value transfer to itself fills it, and the held one lands.
func TestNonceGapFilled(t *testing.T) {
	proxy, dial := faultyChain(t)
	key := devkeys.DevAccounts(2)[1]
	c := dial(Options{SettlerKey: key.Key, RecheckEvery: 100 * time.Millisecond})
	to := common.Address{0xa3}
	proxy.Add(faultrpc.DropSends(1))
	lost, err := c.Send(context.Background(), tokenAddr, transferData(to, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	held, err := c.Send(context.Background(), tokenAddr, transferData(to, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.sender.Forget(lost)
	ctx := withinSeconds(t, 8)
	if _, err := c.WaitMined(ctx, held); err != nil {
		t.Fatalf("the transaction above the gap did not land: %v", err)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 2 {
		t.Fatalf("balance %s, want 2: the lost transfer must not reappear", b)
	}
	if _, _, err := c.eps[0].eth.TransactionByHash(ctx, lost); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("the lost transaction reached the node: %v", err)
	}
	var filler *faultrpc.Sent
	for _, s := range proxy.Sent() {
		if s.Nonce == 0 && s.Forwarded {
			filler = &s
		}
	}
	if filler == nil {
		t.Fatalf("no transaction reached the node at nonce 0: %+v", proxy.Sent())
	}
	tx, _, err := c.eps[0].eth.TransactionByHash(ctx, filler.Hash)
	if err != nil || *tx.To() != key.Address || tx.Value().Sign() != 0 {
		t.Fatalf("filler to %v value %v data %x (%v), want a 0-value transfer to the settler %s", tx.To(), tx.Value(), tx.Data(), err, key.Address)
	}
}

// TestStuckTransactionReplaced (defect 5): every broadcast of the first transaction signed at a
// nonce is lost, as one priced below what miners take would never be mined. After ReplaceAfter
// it is replaced (same nonce, fees raised), the write-ahead hook records the replacement's hash
// before it is broadcast, WaitMined on the first hash returns the replacement's receipt, and
// exactly one of the two lands.
func TestStuckTransactionReplaced(t *testing.T) {
	proxy, dial := faultyChain(t)
	c := dial(Options{SettlerKey: devkeys.DevAccounts(2)[1].Key, RecheckEvery: 100 * time.Millisecond, ReplaceAfter: 300 * time.Millisecond})
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", If: proxy.FirstSignedAt(), Do: faultrpc.Drop()})
	to := common.Address{0xa4}
	var recorded []common.Hash
	first, err := c.Send(context.Background(), tokenAddr, transferData(to, 5), func(h common.Hash) error {
		recorded = append(recorded, h)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := withinSeconds(t, 8)
	r, err := c.WaitMined(ctx, first)
	if err != nil {
		t.Fatalf("the stuck transaction was not replaced: %v", err)
	}
	if len(recorded) != 2 || recorded[0] != first || r.TxHash != recorded[1] {
		t.Fatalf("recorded %v, mined %s: want the first hash, then the replacement's, which is mined", recorded, r.TxHash)
	}
	if _, _, err := c.eps[0].eth.TransactionByHash(ctx, first); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("the replaced transaction is known to the node: %v", err)
	}
	if old := proxy.Sent()[0]; old.Hash != first || old.Forwarded {
		t.Fatalf("first send %+v", old)
	}
	if b, _ := c.BalanceOf(ctx, tokenAddr, to); b.Int64() != 5 {
		t.Fatalf("balance %s, want 5: exactly one of the two landed", b)
	}
	tx, _, err := c.eps[0].eth.TransactionByHash(ctx, r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if o := proxy.Sent()[0]; o.Nonce != tx.Nonce() {
		t.Fatalf("replacement at nonce %d, original at %d", tx.Nonce(), o.Nonce)
	}
}

// TestReplacementStopsAtFeeCeiling: with the ceiling already reached, a stuck transaction is not
// replaced: it waits (reported once), and is never sent at a higher price.
func TestReplacementStopsAtFeeCeiling(t *testing.T) {
	proxy, dial := faultyChain(t)
	probe := dial(Options{})
	_, feeCap, err := probe.SuggestFees(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(Options{SettlerKey: devkeys.DevAccounts(2)[1].Key, RecheckEvery: 50 * time.Millisecond,
		ReplaceAfter: 100 * time.Millisecond, MaxFeePerGas: feeCap})
	proxy.Add(faultrpc.Fault{Method: "eth_sendRawTransaction", If: proxy.FirstSignedAt(), Do: faultrpc.Drop()})
	var recorded int
	hash, err := c.Send(context.Background(), tokenAddr, transferData(common.Address{0xa5}, 1), func(common.Hash) error {
		recorded++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.WaitMined(ctx, hash); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the wait to run out", err)
	}
	if recorded != 1 {
		t.Fatalf("%d hashes recorded, want only the first: the ceiling leaves no room", recorded)
	}
}

// TestSettlerFundsChecks: an empty settler fails the start-up check with a message that says how
// to fund it; a low balance is logged once per crossing (its recovery: settle/account's
// TestFundsLevelsAreLoggedOncePerCrossing).
func TestSettlerFundsChecks(t *testing.T) {
	_, dial := faultyChain(t)
	ctx := context.Background()
	empty := dial(Options{SettlerKey: devkeys.DevAccounts(6)[5].Key})
	err := empty.RequireSettlerFunds(ctx)
	var funding *account.FundingError
	if !errors.As(err, &funding) || funding.Balance.Sign() != 0 || !strings.Contains(err.Error(), "send it about") {
		t.Fatalf("empty settler: %v", err)
	}

	logs := &logBuffer{}
	hundredETH := new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))
	c := dial(Options{SettlerKey: devkeys.DevAccounts(2)[1].Key, MinGasBalance: new(big.Int).Add(hundredETH, big.NewInt(1)),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	for range 2 {
		if err := c.RequireSettlerFunds(ctx); err != nil {
			t.Fatalf("a low but usable balance must not stop the start: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "settler gas balance is low"); n != 1 {
		t.Fatalf("low balance logged %d times, want once:\n%s", n, logs)
	}
}
