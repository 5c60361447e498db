package settle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
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
