package batchmethod

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/store"
)

// stateChain answers every channel with the same state and counts the reads. The escrow side of
// the watcher is tested end to end in internal/app; this checks which channels it refreshes.
type stateChain struct {
	mu      sync.Mutex
	reads   map[common.Hash]int
	head    uint64
	events  []Event
	reading [][2]uint64          // the block ranges events were asked for
	down    map[common.Hash]bool // reading these channels fails
	pending *big.Int             // the pending withdrawal every channel reports
}

func (c *stateChain) BlockNumber(context.Context) (uint64, error) { return max(c.head, 50), nil }

func (c *stateChain) ChannelEvents(_ context.Context, from, to uint64) ([]Event, error) {
	c.reading = append(c.reading, [2]uint64{from, to})
	return c.events, nil
}

func (c *stateChain) ChannelState(_ context.Context, id common.Hash) (store.ChannelChainState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down[id] {
		return store.ChannelChainState{}, errors.New("rpc: connection refused")
	}
	c.reads[id]++
	pending := big.NewInt(0)
	if c.pending != nil {
		pending = c.pending
	}
	return store.ChannelChainState{Balance: big.NewInt(7), TotalClaimed: big.NewInt(0), PendingWithdrawal: pending,
		RefundNonce: big.NewInt(0), Block: max(c.head, 50)}, nil
}

// TestWatcherStartRefreshesEveryChannel: the start-up refresh pages through all channels, more
// than one listing holds, each exactly once.
func TestWatcherStartRefreshesEveryChannel(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const n = store.MaxListLimit + 5
	addr := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").Hex()
	for i := range n {
		id := common.BigToHash(big.NewInt(int64(0xFEED0000 + i))).Hex()
		err := st.CreateChannel(ctx, &store.Channel{ID: id, Network: "eip155:1337", Payer: addr, PayerAuthorizer: addr, Receiver: addr,
			ReceiverAuthorizer: addr, Token: addr, WithdrawDelay: 900, Salt: common.Hash{}.Hex(), Balance: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
	}
	chain := &stateChain{reads: map[common.Hash]int{}}
	w := &Watcher{Store: st, Chain: chain, Network: "eip155:1337"}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if len(chain.reads) != n {
		t.Fatalf("refreshed %d channels, want %d", len(chain.reads), n)
	}
	for id, reads := range chain.reads {
		if reads != 1 {
			t.Fatalf("channel %s read %d times", id.Hex(), reads)
		}
	}
	last, err := st.GetChannel(ctx, common.BigToHash(big.NewInt(0xFEED0000+n-1)).Hex())
	if err != nil || last.Balance.Int64() != 7 || last.SyncedBlock != 50 {
		t.Fatalf("last channel after the refresh: %+v %v", last, err)
	}
}

// TestWatcherReadsAgainWhatItFailedToRefresh: a withdrawal whose channel could not be read is
// not skipped. A failed start-up refresh leaves the watcher unstarted (the next round starts it
// again), and a round whose refresh failed reads the same blocks again next time.
func TestWatcherReadsAgainWhatItFailedToRefresh(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	addr := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").Hex()
	id := common.BigToHash(big.NewInt(0xFEED))
	err := st.CreateChannel(ctx, &store.Channel{ID: id.Hex(), Network: "eip155:1337", Payer: addr, PayerAuthorizer: addr, Receiver: addr,
		ReceiverAuthorizer: addr, Token: addr, WithdrawDelay: 900, Salt: common.Hash{}.Hex(), Balance: big.NewInt(7)})
	if err != nil {
		t.Fatal(err)
	}
	chain := &stateChain{reads: map[common.Hash]int{}, down: map[common.Hash]bool{id: true}}
	w := &Watcher{Store: st, Chain: chain, Network: "eip155:1337"}
	if err := w.Start(ctx); err == nil {
		t.Fatal("start with an unreadable channel reported success")
	}
	chain.down[id] = false
	if err := w.RunOnce(ctx); err != nil || chain.reads[id] != 1 || len(chain.reading) != 0 {
		t.Fatalf("the next round must start the watcher again: %v, %d reads, %v", err, chain.reads[id], chain.reading)
	}

	// Blocks 51-60 carry a withdrawal, but the channel cannot be read: they are read again.
	chain.head, chain.events, chain.pending, chain.down[id] = 60, []Event{{ChannelID: id, Name: "WithdrawInitiated", Block: 55}}, big.NewInt(5), true
	if err := w.RunOnce(ctx); err == nil {
		t.Fatal("a round whose refresh failed reported success")
	}
	chain.down[id] = false
	if err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(chain.reading) != 2 || chain.reading[0] != [2]uint64{51, 60} || chain.reading[1] != [2]uint64{51, 60} {
		t.Fatalf("event ranges read: %v; want 51-60 twice", chain.reading)
	}
	got, err := st.GetChannel(ctx, id.Hex())
	if err != nil || got.PendingWithdrawal.Int64() != 5 || got.SyncedBlock != 60 {
		t.Fatalf("channel after the second round: %+v %v", got, err)
	}
	chain.events = nil
	if err := w.RunOnce(ctx); err != nil || len(chain.reading) != 2 {
		t.Fatalf("nothing new to read: %v, ranges %v", err, chain.reading)
	}
}
