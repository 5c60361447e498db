package channels

import (
	"context"
	"math/big"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
)

// stateChain answers every channel with the same state and counts the reads. The escrow side of
// the watcher is tested end to end in internal/app; this checks which channels it refreshes.
type stateChain struct {
	mu    sync.Mutex
	reads map[common.Hash]int
}

func (c *stateChain) BlockNumber(context.Context) (uint64, error) { return 50, nil }

func (c *stateChain) ChannelEvents(context.Context, uint64, uint64) ([]Event, error) { return nil, nil }

func (c *stateChain) ChannelState(_ context.Context, id common.Hash) (store.ChannelChainState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads[id]++
	return store.ChannelChainState{Balance: big.NewInt(7), TotalClaimed: big.NewInt(0), PendingWithdrawal: big.NewInt(0),
		RefundNonce: big.NewInt(0), Block: 50}, nil
}

// TestWatcherStartRefreshesEveryChannel: the start-up refresh pages through all channels, more
// than one listing holds, each exactly once.
func TestWatcherStartRefreshesEveryChannel(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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
