package devchain

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/payper/payper/chain/devkeys"
)

// Shape of the burst in TestBurstKeepsChainTimeAtWallClock.
const (
	burstSenders   = 8
	burstPerSender = 25
)

// TestBurstKeepsChainTimeAtWallClock: several senders fire transactions as fast as the node takes
// them. Every one is mined, and the chain's clock ends no more than a second ahead of the wall
// clock (one block a second at most, each stamped with the current second).
func TestBurstKeepsChainTimeAtWallClock(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{Alloc: devAlloc(burstSenders)})
	first, err := client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	for _, from := range devkeys.DevAccounts(burstSenders) {
		wg.Go(func() {
			lat, err := burst(ctx, chain, from, burstPerSender)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			latencies = append(latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	head, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	lead := int64(head.Time) - time.Now().Unix()
	slices.Sort(latencies)
	t.Logf("%d transactions in %d blocks; chain clock %+d s from the wall clock; time to receipt p50 %v, p99 %v, max %v",
		len(latencies), head.Number.Uint64()-first, lead,
		latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])
	if lead > 1 {
		t.Errorf("chain clock %d s ahead of the wall clock after a burst of %d transactions", lead, len(latencies))
	}
}

// burst sends n transfers from one account without waiting in between, then waits for their
// receipts and returns each one's time from send to receipt.
func burst(ctx context.Context, chain *Chain, from devkeys.Account, n int) ([]time.Duration, error) {
	client, err := ethclient.Dial(chain.RPCURL())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	signer := types.LatestSignerForChainID(chain.ChainID())
	txs := make([]*types.Transaction, n)
	sent := make([]time.Time, n)
	for i := range txs {
		txs[i] = types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
			ChainID: chain.ChainID(), Nonce: uint64(i), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e10),
			Gas: 21_000, To: &from.Address, Value: big.NewInt(1),
		})
		sent[i] = time.Now()
		if err := client.SendTransaction(ctx, txs[i]); err != nil {
			return nil, err
		}
	}
	latencies := make([]time.Duration, n)
	for i, tx := range txs {
		for {
			_, err := client.TransactionReceipt(ctx, tx.Hash())
			if err == nil {
				latencies[i] = time.Since(sent[i])
				break
			}
			if !errors.Is(err, ethereum.NotFound) {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(5 * time.Millisecond): // polling, as any client does
			}
		}
	}
	return latencies, nil
}

// TestLoneTransactionIsMinedAtOnce: pacing never delays a transaction that arrives when no
// block was sealed in the current second.
func TestLoneTransactionIsMinedAtOnce(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{Alloc: devAlloc(2)})
	accs := devkeys.DevAccounts(2)
	head, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Just past the start of a second later than the head's: the worst moment for a chain that
	// paced even an idle transaction to the next second.
	time.Sleep(time.Until(time.Unix(int64(head.Time)+1, 0)) + 20*time.Millisecond)
	began := time.Now()
	tx := sendTransfer(ctx, t, client, chain.ChainID(), accs[0], 0, accs[1].Address, big.NewInt(1))
	waitMined(ctx, t, client, tx.Hash())
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Fatalf("a lone transaction took %v to be mined", took)
	}
}

func TestNextSeal(t *testing.T) {
	const head = 1_000
	at := func(sec int64, ms int64) time.Time { return time.Unix(sec, ms*int64(time.Millisecond)) }
	tests := []struct {
		name     string
		lastSeal time.Time
		want     time.Time
	}{
		{"head sealed this second: the next second", at(head, 200), at(head+1, 0)},
		{"idle since: at once (a time already past)", at(head, 0), at(head+1, 0)},
		{"head ahead of the wall clock: a second after the last seal", at(head-60, 300), at(head-59, 300)},
	}
	for _, tt := range tests {
		if got := nextSeal(head, tt.lastSeal); !got.Equal(tt.want) {
			t.Errorf("%s: nextSeal(%d, %v) = %v, want %v", tt.name, head, tt.lastSeal, got, tt.want)
		}
	}
}

// TestChainAheadKeepsMining: a chain whose clock was moved ahead is paced, not stalled until the
// wall clock catches up.
func TestChainAheadKeepsMining(t *testing.T) {
	ctx := testContext(t)
	chain, client := startChain(t, Config{Alloc: devAlloc(2)})
	if err := chain.AdjustTime(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	accs := devkeys.DevAccounts(2)
	for nonce := range uint64(2) {
		tx := sendTransfer(ctx, t, client, chain.ChainID(), accs[0], nonce, accs[1].Address, big.NewInt(1))
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		waitMined(mctx, t, client, tx.Hash())
		cancel()
	}
}

// TestPeriodSealsOnABeat: with a period, blocks come on a fixed beat, empty ones included, each
// about a period after the one before; a WebSocket subscriber on the same port as HTTP sees every
// one of them pushed to it.
func TestPeriodSealsOnABeat(t *testing.T) {
	ctx := testContext(t)
	chain, _ := startChain(t, Config{Alloc: devAlloc(1), Period: time.Second})
	ws, err := ethclient.DialContext(ctx, chain.WSURL())
	if err != nil {
		t.Fatalf("dial %s: %v", chain.WSURL(), err)
	}
	defer ws.Close()
	heads := make(chan *types.Header, 8)
	sub, err := ws.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Unsubscribe()
	var arrivals []time.Time
	var last uint64
	for len(arrivals) < 4 {
		select {
		case h := <-heads:
			if last != 0 && h.Number.Uint64() != last+1 {
				t.Fatalf("head %d after %d", h.Number, last)
			}
			last = h.Number.Uint64()
			arrivals = append(arrivals, time.Now())
		case err := <-sub.Err():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	for i := 1; i < len(arrivals); i++ {
		// Generous: the machine may be busy; an on-demand chain would seal no block at all here.
		if gap := arrivals[i].Sub(arrivals[i-1]); gap < 700*time.Millisecond || gap > 1500*time.Millisecond {
			t.Errorf("block %d came %v after the one before, want about a second", i, gap)
		}
	}
}

func TestPeriodMustBeWholeSeconds(t *testing.T) {
	for _, p := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond} {
		if _, err := Start(testContext(t), Config{ListenAddr: "127.0.0.1:0", Period: p}); err == nil {
			t.Errorf("period %s accepted", p)
		}
	}
}
