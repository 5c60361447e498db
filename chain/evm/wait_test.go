package evm

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/settle/txn"
)

// scriptedChain answers WaitMined's reads in order from a script; the last answer repeats. It
// stands in for a chain that reorganises, which a dev chain cannot be made to do on cue. It is
// also the waiter's head source: a new head is always there, each one the next of heads.
type scriptedChain struct {
	mu       sync.Mutex
	receipts []receiptAnswer
	heads    []uint64
	reads    struct{ receipts, heads int }
}

type receiptAnswer struct {
	r   *types.Receipt
	err error
}

var waitedTx = common.HexToHash("0x7a")

func minedIn(block uint64, blockHash string, status uint64) receiptAnswer {
	return receiptAnswer{r: &types.Receipt{
		TxHash: waitedTx, Status: status, BlockNumber: new(big.Int).SetUint64(block), BlockHash: common.HexToHash(blockHash),
	}}
}

var (
	notMined  = receiptAnswer{err: ethereum.NotFound}
	readFails = receiptAnswer{err: errors.New("upstream timeout")}
)

func (s *scriptedChain) TransactionReceipt(_ context.Context, hash common.Hash) (*types.Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hash != waitedTx {
		return nil, ethereum.NotFound
	}
	a := s.receipts[min(s.reads.receipts, len(s.receipts)-1)]
	s.reads.receipts++
	return a.r, a.err
}

func (s *scriptedChain) Head() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.heads[min(s.reads.heads, len(s.heads)-1)]
	s.reads.heads++
	return h
}

// alwaysChanged is a channel a receive from never waits on.
var alwaysChanged = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (s *scriptedChain) Changed() <-chan struct{} { return alwaysChanged }

func waitingClient(confirmations uint64) *Client {
	return &Client{
		opts: Options{Confirmations: confirmations, CallTimeout: time.Minute},
		log:  slog.New(slog.DiscardHandler),
	}
}

func TestWaitMinedFollowsReorgs(t *testing.T) {
	tests := []struct {
		name          string
		confirmations uint64
		receipts      []receiptAnswer
		heads         []uint64
		wantBlockHash string
		wantStatus    uint64
		wantReads     int // receipt reads
	}{
		{
			name: "one confirmation takes the first receipt", confirmations: 1,
			receipts: []receiptAnswer{notMined, minedIn(10, "0xa", 1)}, heads: []uint64{10},
			wantBlockHash: "0xa", wantStatus: 1, wantReads: 2,
		},
		{
			name: "stays in its block while it deepens", confirmations: 3,
			receipts: []receiptAnswer{minedIn(10, "0xa", 1)}, heads: []uint64{10, 11, 12},
			wantBlockHash: "0xa", wantStatus: 1, wantReads: 2,
		},
		{
			name: "dropped, then mined again elsewhere", confirmations: 3,
			receipts: []receiptAnswer{minedIn(10, "0xa", 1), notMined, notMined, minedIn(11, "0xb", 1)},
			heads:    []uint64{12, 13},
			// first read, recheck (gone), a read while not mined, the new receipt, its recheck
			wantBlockHash: "0xb", wantStatus: 1, wantReads: 5,
		},
		{
			name: "moved to a later block: confirmations counted again", confirmations: 2,
			receipts: []receiptAnswer{minedIn(10, "0xa", 1), minedIn(11, "0xb", 1)},
			heads:    []uint64{11, 11, 12},
			// first read, recheck (moved), recheck of the new block once deep
			wantBlockHash: "0xb", wantStatus: 1, wantReads: 3,
		},
		{
			name: "a failed recheck is not a confirmation", confirmations: 2,
			receipts:      []receiptAnswer{minedIn(10, "0xa", 1), readFails, minedIn(10, "0xa", 1)},
			heads:         []uint64{11},
			wantBlockHash: "0xa", wantStatus: 1, wantReads: 3,
		},
		{
			name: "reverted in one branch, succeeded in the other", confirmations: 2,
			receipts:      []receiptAnswer{minedIn(10, "0xa", 0), minedIn(10, "0xc", 1)},
			heads:         []uint64{11},
			wantBlockHash: "0xc", wantStatus: 1, wantReads: 3,
		},
		{
			name: "failed on chain once final", confirmations: 2,
			receipts: []receiptAnswer{minedIn(10, "0xa", 0)}, heads: []uint64{10, 11},
			wantBlockHash: "0xa", wantStatus: 0, wantReads: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := &scriptedChain{receipts: tt.receipts, heads: tt.heads}
			r, err := waitingClient(tt.confirmations).waitMined(t.Context(), chain, chain, waitedTx, nil)
			if tt.wantStatus == 0 {
				if !errors.Is(err, txn.ErrFailed) {
					t.Fatalf("err %v, want txn.ErrFailed", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if r == nil || r.BlockHash != common.HexToHash(tt.wantBlockHash) || r.Status != tt.wantStatus {
				t.Fatalf("receipt %+v, want block %s status %d", r, tt.wantBlockHash, tt.wantStatus)
			}
			if chain.reads.receipts != tt.wantReads {
				t.Fatalf("%d receipt reads, want %d", chain.reads.receipts, tt.wantReads)
			}
			if tt.confirmations == 1 && chain.reads.heads != 0 {
				t.Fatalf("one confirmation read the head %d times", chain.reads.heads)
			}
		})
	}
}

// TestWaitMinedDroppedTransactionIsNotConfirmed: a receipt seen deep enough but gone on the
// recheck is never reported, however deep the chain grows.
func TestWaitMinedDroppedTransactionIsNotConfirmed(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	chain := &dropThenCancel{scriptedChain: scriptedChain{
		receipts: []receiptAnswer{minedIn(10, "0xa", 1), notMined}, heads: []uint64{50},
	}, cancelAfter: 6, cancel: cancel}
	r, err := waitingClient(4).waitMined(ctx, chain, chain, waitedTx, nil)
	if !errors.Is(err, context.Canceled) || r != nil {
		t.Fatalf("got receipt %v, err %v; want no receipt and context.Canceled", r, err)
	}
	if chain.reads.heads != 1 {
		t.Fatalf("head read %d times; a dropped transaction has no depth to count", chain.reads.heads)
	}
}

// dropThenCancel ends the wait after a number of receipt reads, as a caller's deadline would.
type dropThenCancel struct {
	scriptedChain
	cancelAfter int
	cancel      context.CancelFunc
}

func (d *dropThenCancel) TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	r, err := d.scriptedChain.TransactionReceipt(ctx, hash)
	if d.reads.receipts >= d.cancelAfter {
		d.cancel()
	}
	return r, err
}
