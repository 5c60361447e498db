package devchain

import (
	"context"
	"errors"
	"math/big"
	"net"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/payper/payper/chain/devkeys"
)

var oneEther = big.NewInt(1e18)

func testContext(t *testing.T) context.Context {
	t.Helper()
	// Generous bound so a broken chain fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func devAlloc(n int) map[common.Address]*big.Int {
	alloc := make(map[common.Address]*big.Int)
	for _, acc := range devkeys.DevAccounts(n) {
		alloc[acc.Address] = new(big.Int).Mul(big.NewInt(1000), oneEther)
	}
	return alloc
}

// startChain starts a chain on a free loopback port and closes it at cleanup.
func startChain(t *testing.T, cfg Config) (*Chain, *ethclient.Client) {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	began := time.Now()
	chain, err := Start(testContext(t), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v (%s)", time.Since(began), chain.RPCURL())
	client, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		chain.Close()
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		if err := chain.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return chain, client
}

// sendTransfer signs and sends an EIP-1559 transfer using the fee values a
// standard client would pick.
func sendTransfer(ctx context.Context, t *testing.T, client *ethclient.Client, chainID *big.Int, from devkeys.Account, nonce uint64, to common.Address, value *big.Int) *types.Transaction {
	t.Helper()
	tip, err := client.SuggestGasTipCap(ctx)
	if err != nil {
		t.Fatalf("SuggestGasTipCap: %v", err)
	}
	head, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatalf("HeaderByNumber: %v", err)
	}
	feeCap := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	tx := types.MustSignNewTx(from.Key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: 21_000, To: &to, Value: value,
	})
	if err := client.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("SendTransaction(nonce %d): %v", nonce, err)
	}
	return tx
}

// waitMined polls for the receipt; the chain must mine on its own.
func waitMined(ctx context.Context, t *testing.T, client *ethclient.Client, hash common.Hash) *types.Receipt {
	t.Helper()
	for {
		receipt, err := client.TransactionReceipt(ctx, hash)
		if err == nil {
			if receipt.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("tx %s failed", hash)
			}
			return receipt
		}
		if !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("TransactionReceipt: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("tx %s not mined: %v", hash, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func balance(ctx context.Context, t *testing.T, client *ethclient.Client, addr common.Address) *big.Int {
	t.Helper()
	b, err := client.BalanceAt(ctx, addr, nil)
	if err != nil {
		t.Fatalf("BalanceAt: %v", err)
	}
	return b
}

func TestTransferIsMinedWithoutCommit(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{Alloc: devAlloc(2)})
	accs := devkeys.DevAccounts(2)
	from, to := accs[0], accs[1]

	id, err := client.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Uint64() != DefaultChainID || chain.ChainID().Cmp(id) != 0 {
		t.Fatalf("chain id %s (Chain.ChainID %s), want %d", id, chain.ChainID(), DefaultChainID)
	}
	fromBefore, toBefore := balance(ctx, t, client, from.Address), balance(ctx, t, client, to.Address)

	tx := sendTransfer(ctx, t, client, id, from, 0, to.Address, oneEther)
	receipt := waitMined(ctx, t, client, tx.Hash())

	if got := new(big.Int).Sub(balance(ctx, t, client, to.Address), toBefore); got.Cmp(oneEther) != 0 {
		t.Errorf("recipient gained %s, want %s", got, oneEther)
	}
	fee := new(big.Int).Mul(receipt.EffectiveGasPrice, new(big.Int).SetUint64(receipt.GasUsed))
	spent := new(big.Int).Sub(fromBefore, balance(ctx, t, client, from.Address))
	if want := new(big.Int).Add(oneEther, fee); spent.Cmp(want) != 0 {
		t.Errorf("sender spent %s, want value+fee %s", spent, want)
	}
}

func TestLegacyTransactionIsMined(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{Alloc: devAlloc(2)})
	accs := devkeys.DevAccounts(2)

	gasPrice, err := client.SuggestGasPrice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx := types.MustSignNewTx(accs[0].Key, types.LatestSignerForChainID(chain.ChainID()), &types.LegacyTx{
		Nonce: 0, GasPrice: gasPrice, Gas: 21_000, To: &accs[1].Address, Value: big.NewInt(12345),
	})
	if err := client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	waitMined(ctx, t, client, tx.Hash())
}

func TestBackToBackTransactionsAllMine(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{Alloc: devAlloc(2)})
	accs := devkeys.DevAccounts(2)
	const count = 20

	nonce, err := client.PendingNonceAt(ctx, accs[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	var txs []*types.Transaction
	for i := range uint64(count) {
		txs = append(txs, sendTransfer(ctx, t, client, chain.ChainID(), accs[0], nonce+i, accs[1].Address, big.NewInt(1)))
	}
	for _, tx := range txs {
		waitMined(ctx, t, client, tx.Hash())
	}
	if got, err := client.NonceAt(ctx, accs[0].Address, nil); err != nil || got != nonce+count {
		t.Fatalf("nonce after %d txs = %d (%v), want %d", count, got, err, nonce+count)
	}
}

func TestGenesisContractOnChain(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{
		Alloc:     devAlloc(1),
		Contracts: []GenesisContract{storeContract(7, setCall(42))},
	})

	code, err := client.CodeAt(ctx, storeAddr, nil)
	if err != nil || len(code) == 0 {
		t.Fatalf("eth_getCode = %x (%v), want runtime code", code, err)
	}
	if got := callStore(ctx, t, client); got != 42 {
		t.Fatalf("stored value = %d, want 42 (set by the genesis call)", got)
	}
	setter, err := client.StorageAt(ctx, storeAddr, common.BigToHash(big.NewInt(1)), nil)
	if err != nil || common.BytesToAddress(setter) != setterAddr {
		t.Fatalf("slot 1 = %x (%v), want genesis caller %s", setter, err, setterAddr)
	}

	// The contract also works for ordinary transactions afterwards.
	acc := devkeys.DevAccounts(1)[0]
	tip, err := client.SuggestGasTipCap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx := types.MustSignNewTx(acc.Key, types.LatestSignerForChainID(chain.ChainID()), &types.DynamicFeeTx{
		ChainID: chain.ChainID(), Nonce: 0, GasTipCap: tip, GasFeeCap: big.NewInt(1e10), Gas: 100_000,
		To: &storeAddr, Data: common.BigToHash(big.NewInt(99)).Bytes(),
	})
	if err := client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	receipt := waitMined(ctx, t, client, tx.Hash())
	if got := callStore(ctx, t, client); got != 99 {
		t.Fatalf("stored value after tx = %d, want 99", got)
	}
	logs, err := client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: big.NewInt(0), ToBlock: receipt.BlockNumber, Addresses: []common.Address{storeAddr},
	})
	if err != nil {
		t.Fatalf("eth_getLogs: %v", err)
	}
	if len(logs) != 1 || logs[0].TxHash != tx.Hash() || new(big.Int).SetBytes(logs[0].Data).Int64() != 99 {
		t.Fatalf("eth_getLogs = %+v, want the single log of the set transaction", logs)
	}
}

func callStore(ctx context.Context, t *testing.T, client *ethclient.Client) uint64 {
	t.Helper()
	out, err := client.CallContract(ctx, ethereum.CallMsg{To: &storeAddr}, nil)
	if err != nil {
		t.Fatalf("eth_call: %v", err)
	}
	return new(big.Int).SetBytes(out).Uint64()
}

func TestPersistsAcrossRestart(t *testing.T) {
	ctx := testContext(t)
	cfg := Config{
		ListenAddr: "127.0.0.1:0",
		DataDir:    t.TempDir(),
		Alloc:      devAlloc(2),
		Contracts:  []GenesisContract{storeContract(7, setCall(42))},
	}
	accs := devkeys.DevAccounts(2)

	first, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ethclient.Dial(first.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	tx := sendTransfer(ctx, t, client, first.ChainID(), accs[0], 0, accs[1].Address, oneEther)
	mined := waitMined(ctx, t, client, tx.Hash())
	wantBalance := balance(ctx, t, client, accs[1].Address)
	client.Close()
	if err := first.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}

	_, client = startChain(t, cfg)
	head, err := client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head < mined.BlockNumber.Uint64() {
		t.Fatalf("head after restart = %d, want >= %d", head, mined.BlockNumber)
	}
	if got := balance(ctx, t, client, accs[1].Address); got.Cmp(wantBalance) != 0 {
		t.Fatalf("balance after restart = %s, want %s", got, wantBalance)
	}
	if _, err := client.TransactionReceipt(ctx, tx.Hash()); err != nil {
		t.Fatalf("receipt from the first run: %v", err)
	}
	if got := callStore(ctx, t, client); got != 42 {
		t.Fatalf("genesis contract value after restart = %d, want 42", got)
	}
	// The reopened chain keeps mining from where it left off.
	next := sendTransfer(ctx, t, client, big.NewInt(DefaultChainID), accs[0], 1, accs[1].Address, oneEther)
	waitMined(ctx, t, client, next.Hash())
}

func TestDifferentGenesisOnSameDataDirFails(t *testing.T) {
	ctx := testContext(t)
	cfg := Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Alloc: devAlloc(1)}
	chain, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := chain.Close(); err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(*Config){
		"chain id": func(c *Config) { c.ChainID = 31337 },
		"balances": func(c *Config) { c.Alloc = devAlloc(2) },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			changed := cfg
			change(&changed)
			if chain, err := Start(ctx, changed); !errors.Is(err, ErrGenesisMismatch) {
				if chain != nil {
					chain.Close()
				}
				t.Fatalf("err = %v, want ErrGenesisMismatch", err)
			}
		})
	}
	// The original config still opens the chain after the failed attempts.
	chain, err = Start(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen with the original config: %v", err)
	}
	if err := chain.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFreesPort(t *testing.T) {
	ctx := testContext(t)
	chain, err := Start(ctx, Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(chain.RPCURL())
	if err != nil || u.Port() == "0" || u.Port() == "" {
		t.Fatalf("RPCURL %q should carry the real port", chain.RPCURL())
	}
	if err := chain.Close(); err != nil {
		t.Fatal(err)
	}
	if err := chain.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("port still in use after Close: %v", err)
	}
	ln.Close()
}

func TestRepeatedStartCloseLeaksNoGoroutines(t *testing.T) {
	ctx := testContext(t)
	startClose := func() {
		chain, err := Start(ctx, Config{ListenAddr: "127.0.0.1:0", Alloc: devAlloc(1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The first run starts process-wide workers that go-ethereum keeps for
	// the life of the process; measure after it.
	startClose()
	baseline := settledGoroutines(ctx, 0)
	for range 3 {
		startClose()
	}
	settleCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if after := settledGoroutines(settleCtx, baseline); after > baseline {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after three Start/Close cycles\n%s",
			baseline, after, buf[:runtime.Stack(buf, true)])
	}
}

// settledGoroutines waits until the goroutine count drops to target (some
// shut down asynchronously, e.g. leveldb drains for up to a second), or until
// ctx ends, and returns the last count. target 0 means "until it stops
// changing".
func settledGoroutines(ctx context.Context, target int) int {
	last := runtime.NumGoroutine()
	for {
		select {
		case <-ctx.Done():
			return last
		case <-time.After(1200 * time.Millisecond):
		}
		n := runtime.NumGoroutine()
		if (target == 0 && n == last) || (target > 0 && n <= target) {
			return n
		}
		last = n
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if chain, err := Start(testContext(t), Config{ListenAddr: ln.Addr().String()}); err == nil {
		chain.Close()
		t.Fatal("Start succeeded on a port that is in use")
	}
}

func TestAdjustTimeMovesTheChainClock(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx, Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client, err := ethclient.DialContext(ctx, c.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	before, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AdjustTime(ctx, 901*time.Second); err != nil {
		t.Fatal(err)
	}
	after, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Number.Uint64() != before.Number.Uint64()+1 || after.Time != before.Time+901 {
		t.Fatalf("block %d at %d, then block %d at %d; want one block 901 s later", before.Number, before.Time, after.Number, after.Time)
	}
}
