package settle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/store"
	"github.com/payper/payper/x402"
)

// memQueue is a queue of payments that leave it once a settler has had them.
type memQueue struct {
	mu      sync.Mutex
	pending []store.Payment
	reads   int
}

func (q *memQueue) QueuedPayments(_ context.Context, afterID int64, limit int) ([]store.Payment, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reads++
	var out []store.Payment
	for _, p := range q.pending {
		if p.ID > afterID && len(out) < limit {
			out = append(out, p)
		}
	}
	return out, nil
}

func (q *memQueue) remove(id int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.pending {
		if p.ID == id {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			return
		}
	}
}

// gatedSettler settles a batch once the test opens the gate, and records what it got.
type gatedSettler struct {
	q       *memQueue
	gate    chan struct{}
	mu      sync.Mutex
	running int
	peak    int
	settled map[int64]int
	err     error
}

func (s *gatedSettler) SettleQueued(ctx context.Context, batch []store.Payment) error {
	s.mu.Lock()
	s.running++
	s.peak = max(s.peak, s.running)
	s.mu.Unlock()
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	for _, p := range batch {
		s.settled[p.ID]++
		if s.err == nil {
			s.q.remove(p.ID)
		}
	}
	return s.err
}

func queued(n int) *memQueue {
	q := &memQueue{}
	for i := 1; i <= n; i++ {
		q.pending = append(q.pending, store.Payment{ID: int64(i)})
	}
	return q
}

// TestQueueSettlesEachPaymentOnceWithinItsWorkers: the queue keeps at most Workers batches in
// flight, never hands a payment that is still being settled to another batch (it reads the
// queue again while batches hang, and finds them there), and drains.
func TestQueueSettlesEachPaymentOnceWithinItsWorkers(t *testing.T) {
	q := queued(5)
	s := &gatedSettler{q: q, gate: make(chan struct{}), settled: map[int64]int{}}
	queue := &Queue{Ledger: q, Settler: s, Workers: 4, BatchSize: 2, Poll: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); queue.Run(ctx) }()
	eventually(t, func() bool { return q.readsSoFar() >= 20 })
	close(s.gate)
	eventually(t, func() bool { return q.left() == 0 })
	cancel()
	<-done
	if s.peak != 3 {
		t.Fatalf("%d batches at once, want 3 (five payments by two, within four workers)", s.peak)
	}
	for id := int64(1); id <= 5; id++ {
		if s.settled[id] != 1 {
			t.Fatalf("payment %d handed to the settler %d times: %v", id, s.settled[id], s.settled)
		}
	}
}

// eventually waits for cond, polling, and fails the test after 10 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
	}
}

func (q *memQueue) readsSoFar() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.reads
}

func (q *memQueue) left() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// noLease never grants the queue's lease.
type noLease struct{}

func (noLease) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	return false, nil
}
func (noLease) ReleaseLease(context.Context, string, string) error { return nil }

// TestQueueWithoutTheLeaseSendsNothing: a replica that does not hold the queue's lease leaves
// the queue to the one that does.
func TestQueueWithoutTheLeaseSendsNothing(t *testing.T) {
	q := queued(3)
	s := &gatedSettler{q: q, gate: make(chan struct{}), settled: map[int64]int{}}
	close(s.gate)
	queue := &Queue{Ledger: q, Settler: s, Leases: noLease{}, Poll: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	queue.Run(ctx)
	if len(s.settled) != 0 || q.readsSoFar() != 0 {
		t.Fatalf("settled %v, read the queue %d times, without the lease", s.settled, q.readsSoFar())
	}
}

// TestQueueWaitsAfterAFailedBatch: a batch that fails for a reason of the gateway's own pauses
// the queue instead of hammering the chain.
func TestQueueWaitsAfterAFailedBatch(t *testing.T) {
	q := queued(1)
	s := &gatedSettler{q: q, gate: make(chan struct{}), settled: map[int64]int{}, err: errors.New("the settler cannot pay for gas")}
	close(s.gate)
	queue := &Queue{Ledger: q, Settler: s, Poll: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	queue.Run(ctx)
	if n := s.settled[1]; n != 1 {
		t.Fatalf("a failing payment was tried %d times within 200 ms; the queue must wait a second first", n)
	}
}

// queueLedger is fakeLedger with the queue's writes, for settling queued payments.
type queueLedger struct {
	fakeLedger
	firstConflict bool
	requeued      []string
}

func (l *queueLedger) MarkFirstSubmitted(ctx context.Context, id int64, h string) error {
	if l.firstConflict {
		return fmt.Errorf("payment %d: %w", id, store.ErrConflict)
	}
	return l.MarkSubmitted(ctx, id, h)
}

func (l *queueLedger) RequeuePayment(_ context.Context, _ int64, h string) error {
	l.requeued = append(l.requeued, h)
	return nil
}

// scriptedChain signs (calls the write-ahead hook), then answers a send with err.
type scriptedChain struct {
	fakeChain
	err error
}

func (c *scriptedChain) Send(_ context.Context, _ common.Address, _ []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	c.sent++
	h := common.HexToHash("0x0abc")
	if err := onSigned(h); err != nil {
		return common.Hash{}, fmt.Errorf("%w: write-ahead record: %w", evm.ErrNotSent, err)
	}
	return h, c.err
}

func (c *scriptedChain) WaitMined(_ context.Context, h common.Hash) (*types.Receipt, error) {
	return &types.Receipt{TxHash: h, Status: types.ReceiptStatusSuccessful}, nil
}

func queuedPayment(t *testing.T) store.Payment {
	t.Helper()
	pl := exact.Payload{Signature: make([]byte, 65), Authorization: exact.Authorization{
		From: common.HexToAddress("0x01"), To: common.HexToAddress("0x02"), Value: big.NewInt(1000),
		ValidAfter: big.NewInt(0), ValidBefore: big.NewInt(time.Now().Add(time.Hour).Unix()), Nonce: common.HexToHash("0x05"),
	}}
	raw, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	return store.Payment{ID: 9, Network: "eip155:1337", Asset: "0x03", Payload: string(raw), Async: true, Queued: true}
}

// TestQueuedSendOutcomes: a queued payment whose transfer certainly did not go out for a reason
// of the gateway's own is put back in the queue, never failed (its payer was served and would
// be blocked); one another sender recorded first is left to it; one that would revert fails.
func TestQueuedSendOutcomes(t *testing.T) {
	cases := []struct {
		name          string
		sendErr       error
		firstConflict bool
		requeued      int
		failed        int
		batchErr      bool
	}{
		{"settled", nil, false, 0, 0, false},
		{"nodes refused the broadcast", fmt.Errorf("%w: no endpoint", evm.ErrNotSent), false, 1, 0, true},
		{"settler cannot pay", fmt.Errorf("%w: %w", evm.ErrNotSent, evm.ErrSettlerUnfunded), false, 1, 0, true},
		{"another sender recorded first", nil, true, 0, 0, false},
		{"would revert", fmt.Errorf("%w: %w", evm.ErrNotSent, &evm.RevertError{Reason: "FiatTokenV2: invalid signature"}), false, 0, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ledger := &queueLedger{firstConflict: tc.firstConflict}
			chain := &scriptedChain{err: tc.sendErr}
			e := &Exact{Ledger: ledger, Chain: chain}
			err := e.SettleQueued(context.Background(), []store.Payment{queuedPayment(t)})
			if (err != nil) != tc.batchErr || len(ledger.requeued) != tc.requeued || len(ledger.failed) != tc.failed || len(ledger.released) != 0 {
				t.Fatalf("batch error %v, ledger %+v", err, ledger)
			}
			if tc.requeued == 1 && ledger.requeued[0] != common.HexToHash("0x0abc").Hex() {
				t.Fatalf("requeued under %v", ledger.requeued)
			}
			if tc.name == "settled" && len(ledger.settled) != 1 {
				t.Fatalf("ledger %+v", ledger)
			}
			if tc.failed == 1 && ledger.failed[0] != string(x402.ReasonExactTransactionSimFailed) {
				t.Fatalf("failed with %v", ledger.failed)
			}
		})
	}
}

// TestQueueFindsAPaymentQueuedBehindANewerOne: woken by new payments, the queue reads only those
// after the newest it started; a payment queued later with an older id (its request took longer)
// is still settled, at a whole read, although wakes never stop coming.
func TestQueueFindsAPaymentQueuedBehindANewerOne(t *testing.T) {
	q := &memQueue{pending: []store.Payment{{ID: 5}}}
	s := &gatedSettler{q: q, gate: make(chan struct{}), settled: map[int64]int{}}
	close(s.gate)
	queue := &Queue{Ledger: q, Settler: s, Poll: 50 * time.Millisecond, Gather: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); queue.Run(ctx) }()
	eventually(t, func() bool { return q.left() == 0 })
	q.mu.Lock()
	q.pending = append(q.pending, store.Payment{ID: 3})
	q.mu.Unlock()
	stopWaking := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopWaking:
				return
			case <-time.After(time.Millisecond):
				queue.Notify()
			}
		}
	}()
	eventually(t, func() bool { return q.left() == 0 })
	close(stopWaking)
	cancel()
	<-done
	if s.settled[3] != 1 || s.settled[5] != 1 {
		t.Fatalf("settled %v, want payments 3 and 5 once each", s.settled)
	}
}
