package evm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/internal/faultrpc"
)

// testBlockPeriod is the block time of the chains the latency tests run on: the example.
const testBlockPeriod = 2 * time.Second

// beatChain is a dev chain that seals a block every period, watched by a WebSocket subscriber of
// its own that records when each block became available.
type beatChain struct {
	*devchain.Chain
	mu      sync.Mutex
	arrived map[uint64]time.Time
	changed chan struct{} // closed and replaced at each arrival
}

func startBeatChain(t *testing.T, period time.Duration) *beatChain {
	t.Helper()
	b := &beatChain{Chain: startChainWith(t, devchain.Config{Period: period}), arrived: map[uint64]time.Time{}, changed: make(chan struct{})}
	ws, err := ethclient.Dial(b.WSURL())
	if err != nil {
		t.Fatal(err)
	}
	heads := make(chan *types.Header, 16)
	sub, err := ws.SubscribeNewHead(context.Background(), heads)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { sub.Unsubscribe(); ws.Close(); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case h := <-heads:
				n := h.Number.Uint64()
				b.mu.Lock()
				b.arrived[n] = time.Now()
				close(b.changed)
				b.changed = make(chan struct{})
				b.mu.Unlock()
			case <-sub.Err():
				return
			}
		}
	}()
	return b
}

// nextBlock waits for the next block to arrive.
func (b *beatChain) nextBlock(t *testing.T, ctx context.Context) {
	t.Helper()
	b.mu.Lock()
	changed := b.changed
	b.mu.Unlock()
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// arrival is when block n arrived, waiting for the subscriber to see it if it has not yet.
func (b *beatChain) arrival(t *testing.T, ctx context.Context, n uint64) time.Time {
	t.Helper()
	for {
		b.mu.Lock()
		at, changed := b.arrived[n], b.changed
		b.mu.Unlock()
		if !at.IsZero() {
			return at
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("block %d was never seen arriving: %v", n, ctx.Err())
		}
	}
}

// countedMethods are the calls a settlement makes; callCounts reads them off a proxy.
var countedMethods = []string{
	"eth_blockNumber", "eth_getTransactionReceipt", "eth_getBlockByNumber", "eth_getHeaderByNumber",
	"eth_getTransactionCount", "eth_estimateGas", "eth_maxPriorityFeePerGas", "eth_sendRawTransaction",
	"eth_getBalance", "eth_getTransactionByHash", "eth_call", "eth_chainId",
}

type callCounts map[string]int

func countCalls(p *faultrpc.Proxy) callCounts {
	out := callCounts{}
	for _, m := range countedMethods {
		out[m] = p.Calls(m)
	}
	return out
}

// since is what was called between then and c.
func (c callCounts) since(then callCounts) callCounts {
	out := callCounts{}
	for m, n := range c {
		if d := n - then[m]; d != 0 {
			out[m] = d
		}
	}
	return out
}

func (c callCounts) String() string {
	var parts []string
	for _, m := range countedMethods {
		if c[m] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(m, "eth_"), c[m]))
		}
	}
	return strings.Join(parts, ", ")
}

// settleAfterBlock sends a transfer phase after a block arrived and waits for it. It returns how
// long after its block became available the wait returned.
func settleAfterBlock(t *testing.T, ctx context.Context, b *beatChain, c *Client, phase time.Duration, amount int64) time.Duration {
	t.Helper()
	b.nextBlock(t, ctx)
	time.Sleep(phase) // not synchronisation: where in the block time the settlement starts
	hash, err := c.Send(ctx, tokenAddr, transferData(common.Address{0xc1}, amount), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.WaitMined(ctx, hash)
	returned := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	return returned.Sub(b.arrival(t, ctx, r.BlockNumber.Uint64()))
}

// warmUp settles until the client's head follower polls on the chain's schedule, which it learns
// from the blocks it sees arrive when the chain is too young for timestamps to tell.
func warmUp(t *testing.T, ctx context.Context, b *beatChain, c *Client) {
	t.Helper()
	settleAfterBlock(t, ctx, b, c, 0, 1000) // it also reads the settler's nonces and balance
	for i := int64(1); !c.heads.onSchedule.Load() && !c.heads.subscribed.Load(); i++ {
		settleAfterBlock(t, ctx, b, c, 0, 1000+i)
	}
}

// phases are the moments in the block time at which the latency tests start settlements: spread
// over it, since a wait that backs off on a timer of its own does well at some and badly at others.
var phases = []time.Duration{100 * time.Millisecond, 600 * time.Millisecond, 1100 * time.Millisecond, 1600 * time.Millisecond}

// TestReceiptSeenSoonAfterItsBlock: on a chain with 2 s blocks, a settlement's wait returns
// within a tenth of the block time after the block holding it became available, both when it
// polls over HTTP and when it follows heads over a WebSocket subscription. Over HTTP it asks for
// the receipt once the block is there, not on a timer of its own.
func TestReceiptSeenSoonAfterItsBlock(t *testing.T) {
	t.Parallel() // it mostly waits for blocks
	settlements := len(phases)
	b := startBeatChain(t, testBlockPeriod)
	proxy, err := faultrpc.Start(b.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	for i, url := range []string{proxy.URL(), b.WSURL()} {
		name := strings.SplitN(url, ":", 2)[0]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := withinSeconds(t, 40)
			c, err := Dial(ctx, url, nil, Options{SettlerKey: devkeys.DevAccounts(4)[i+1].Key})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			warmUp(t, ctx, b, c)
			var lags []time.Duration
			before, firstBlock := countCalls(proxy), c.heads.latest()
			for k, phase := range phases {
				lags = append(lags, settleAfterBlock(t, ctx, b, c, phase, int64(k+2)))
			}
			calls := countCalls(proxy).since(before)
			blocks := int(c.heads.latest() - firstBlock)
			t.Logf("%s, %s blocks: started %v after a block, the wait returned %v after the block holding the transaction",
				name, testBlockPeriod, phases, lags)
			if worst := slices.Max(lags); worst > testBlockPeriod/10 {
				t.Errorf("a wait returned %v after its block, more than a tenth of the %s block time", worst, testBlockPeriod)
			}
			if name != "http" {
				return
			}
			t.Logf("HTTP calls for %d settlements over %d blocks: %s", settlements, blocks, calls)
			// One look when the wait begins, one when the block holding it is seen.
			if n := calls["eth_getTransactionReceipt"]; n > 2*settlements {
				t.Errorf("%d receipt reads for %d settlements, want at most 2 each", n, settlements)
			}
			// The head is polled around the moment the next block is due, a few times a block.
			// The head is polled around the moment each block is due, and twice just after each
			// transaction is sent (a chain that mines on demand would have its block then).
			if n := calls["eth_blockNumber"]; n > 3*blocks+3*settlements {
				t.Errorf("%d head polls over %d blocks and %d settlements, want at most 3 a block and 3 a settlement", n, blocks, settlements)
			}
		})
	}
}

// TestWaitersShareOneHeadFollower: many settlements waiting at once cost one head poller between
// them, and each one asks for its receipt only when a block arrived.
func TestWaitersShareOneHeadFollower(t *testing.T) {
	t.Parallel() // it mostly waits for blocks
	const waiters = 12
	b := startBeatChain(t, testBlockPeriod)
	proxy, err := faultrpc.Start(b.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	ctx := withinSeconds(t, 30)
	c, err := Dial(ctx, proxy.URL(), nil, Options{SettlerKey: devkeys.DevAccounts(2)[1].Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	warmUp(t, ctx, b, c)

	b.nextBlock(t, ctx)
	time.Sleep(300 * time.Millisecond) // not synchronisation: the settlements start mid-block
	before, firstBlock := countCalls(proxy), c.heads.latest()
	var wg sync.WaitGroup
	for k := range waiters {
		wg.Go(func() {
			hash, err := c.Send(ctx, tokenAddr, transferData(common.Address{0xc2}, int64(k+1)), nil)
			if err == nil {
				_, err = c.WaitMined(ctx, hash)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	calls := countCalls(proxy).since(before)
	blocks := int(c.heads.latest() - firstBlock)
	t.Logf("%d settlements waited %d blocks; HTTP calls: %s", waiters, blocks, calls)
	if n := calls["eth_getTransactionReceipt"]; n > 2*waiters {
		t.Errorf("%d receipt reads for %d waiters, want at most 2 each", n, waiters)
	}
	// A few a block, and a few for the burst of transactions sent: not a poller per waiter.
	if n := calls["eth_blockNumber"]; n > 3*blocks+6 {
		t.Errorf("%d head polls over %d blocks for %d waiters, want at most 3 a block and 6 for the burst of sends", n, blocks, waiters)
	}
}
