package settle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/store"
)

// QueueSettler settles a batch of queued payments: it sends their transfers and records each
// outcome in the ledger (settled, failed, submitted and left to the reconciler when no receipt
// came in time, or back in the queue when its transfer certainly did not go out). It returns an
// error when the batch could not be settled for a reason the next batches would meet too (the
// settler cannot pay for gas, no node takes transactions), so that the queue waits before it
// tries again. The exact method settles each payment with a transaction of its own; a batching settler
// may send one for several.
type QueueSettler interface {
	SettleQueued(ctx context.Context, batch []store.Payment) error
}

// QueueLedger is the part of the store the queue reads.
type QueueLedger interface {
	QueuedPayments(ctx context.Context, afterID int64, limit int) ([]store.Payment, error)
}

// Leases lets one replica at a time work the queue; store.LeaseStore is one.
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Queue settles async payments in the background, oldest first, a batch at a time, several
// batches at once. The queue is the store's: it survives restarts, and after a crash every
// queued payment is settled once (a payment a crash left mid-send is the reconciler's). With
// Leases, one replica at a time works it; should two ever send the same payment, the first
// write-ahead record lets only one of them broadcast.
type Queue struct {
	Ledger  QueueLedger
	Settler QueueSettler
	Leases  Leases // nil: this process always works the queue
	// BatchSize is how many payments one SettleQueued call gets (default 1); Workers how many
	// batches are settled at once (default 16).
	BatchSize, Workers int
	// Poll is how often the queue is read when nothing wakes it (default 1 s); SettleTimeout
	// bounds one batch (default 1 min: a transfer not mined by then is the reconciler's).
	Poll, SettleTimeout time.Duration
	// Gather is how long the queue waits, once woken, before it reads the payments queued
	// meanwhile (default 50 ms): a queue woken by every payment reads and batches them together.
	Gather time.Duration
	Logger *slog.Logger

	once     sync.Once
	wake     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	inFlight map[int64]bool // guarded by mu
	pauseTil time.Time      // guarded by mu: no new batch before
	failures int            // guarded by mu: consecutive failed batches
	cursor   int64          // guarded by mu: the newest payment started
}

// queueLease names the lease of the replica working the queue.
const queueLease = "async-settlement-queue"

// queueLeaseTTL is how long the lease holds without renewal; it is renewed every poll.
const queueLeaseTTL = 15 * time.Second

func (q *Queue) init() {
	q.once.Do(func() {
		q.wake = make(chan struct{}, 1)
		q.done = make(chan struct{}, 1)
		q.inFlight = map[int64]bool{}
		if q.BatchSize <= 0 {
			q.BatchSize = 1
		}
		if q.Workers <= 0 {
			q.Workers = 16
		}
		if q.Poll <= 0 {
			q.Poll = time.Second
		}
		if q.Gather <= 0 {
			q.Gather = 50 * time.Millisecond
		}
		if q.SettleTimeout <= 0 {
			q.SettleTimeout = time.Minute
		}
		if q.Logger == nil {
			q.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Notify tells the queue that a payment was queued, so that it is sent without waiting for the
// next poll.
func (q *Queue) Notify() {
	q.init()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run works the queue until ctx ends, starting at once, and returns once every batch it
// started is over.
func (q *Queue) Run(ctx context.Context) {
	q.init()
	holder := randomHolder()
	var batches sync.WaitGroup
	defer batches.Wait()
	var lease leaseHold
	var lastWhole time.Time
	woken := false
	for {
		if q.holdLease(ctx, holder, &lease) {
			// The whole queue is read at start, on every poll, and at least once a Poll
			// under a steady stream of wakes.
			whole := !woken || time.Since(lastWhole) >= q.Poll
			if whole {
				lastWhole = time.Now()
			}
			q.dispatch(ctx, &batches, whole)
		}
		woken = false
		select {
		case <-ctx.Done():
			if q.Leases != nil {
				// Detached: the lease is given up even though the context ended.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = q.Leases.ReleaseLease(rctx, queueLease, holder)
				cancel()
			}
			return
		case <-q.wake:
			woken = true
		case <-q.done:
			woken = true
		case <-time.After(q.Poll):
		}
		if woken {
			// Payments are queued one request at a time: one read of the queue a moment later
			// takes all that came meanwhile, instead of one read (and one batch) per payment.
			select {
			case <-ctx.Done():
			case <-time.After(q.Gather):
			}
		}
	}
}

// leaseHold is when the queue's lease was last taken or renewed by this process.
type leaseHold struct {
	held  bool
	until time.Time // renewed again after this
}

// holdLease takes or renews the queue's lease; without Leases it always holds. A lease taken
// less than a third of its life ago is not renewed again: the store is asked a few times per
// lifetime, not on every wake.
func (q *Queue) holdLease(ctx context.Context, holder string, h *leaseHold) bool {
	if q.Leases == nil {
		return true
	}
	if h.held && time.Now().Before(h.until) {
		return true
	}
	ok, err := q.Leases.AcquireLease(ctx, queueLease, holder, queueLeaseTTL)
	if err != nil {
		q.Logger.Warn("taking the settlement queue's lease failed", "err", err)
	}
	h.held = ok && err == nil
	h.until = time.Now().Add(queueLeaseTTL / 3)
	return h.held
}

// dispatch starts batches of queued payments not yet in flight, up to Workers at once. Woken
// by new payments, it reads only those after the newest it has started (the ones in flight are
// older and would be read again for nothing); a full read (whole) also finds a payment queued
// after a newer one was started, or put back in the queue.
func (q *Queue) dispatch(ctx context.Context, batches *sync.WaitGroup, whole bool) {
	q.mu.Lock()
	free := q.Workers - (len(q.inFlight)+q.BatchSize-1)/q.BatchSize
	paused := time.Now().Before(q.pauseTil)
	busy, after := len(q.inFlight), q.cursor
	q.mu.Unlock()
	if free <= 0 || paused || ctx.Err() != nil {
		return
	}
	limit := free * q.BatchSize
	if whole {
		after, limit = 0, busy+limit
	}
	ps, err := q.Ledger.QueuedPayments(ctx, after, limit)
	if err != nil {
		q.Logger.Warn("reading the settlement queue failed", "err", err)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var batch []store.Payment
	for _, p := range ps {
		if q.inFlight[p.ID] {
			continue
		}
		q.inFlight[p.ID] = true
		q.cursor = max(q.cursor, p.ID)
		if batch = append(batch, p); len(batch) == q.BatchSize {
			q.start(ctx, batch, batches)
			batch = nil
		}
	}
	if len(batch) > 0 {
		q.start(ctx, batch, batches)
	}
}

// start settles batch in the background; mu is held.
func (q *Queue) start(ctx context.Context, batch []store.Payment, batches *sync.WaitGroup) {
	batches.Go(func() {
		sctx, cancel := context.WithTimeout(ctx, q.SettleTimeout)
		err := q.Settler.SettleQueued(sctx, batch)
		cancel()
		q.mu.Lock()
		for _, p := range batch {
			delete(q.inFlight, p.ID)
		}
		if err != nil {
			q.failures++
			wait := queueRetry.Delay(q.failures)
			q.pauseTil = time.Now().Add(wait)
			q.Logger.Warn("settling queued payments failed; the queue waits", "count", len(batch), "wait", wait, "err", err)
		} else {
			q.failures = 0
		}
		q.mu.Unlock()
		select {
		case q.done <- struct{}{}:
		default:
		}
	})
}

// queueRetry spaces the queue's attempts while batches fail for a reason of the gateway's own.
var queueRetry = backoff.Policy{Initial: time.Second, Max: 30 * time.Second}

// RunOnce settles every payment queued now (and any queued meanwhile), waiting for each batch,
// and reports how many it handed to the settler. It is for start-up and tests; Run works the
// queue continuously.
func (q *Queue) RunOnce(ctx context.Context) (int, error) {
	q.init()
	n := 0
	for {
		ps, err := q.Ledger.QueuedPayments(ctx, 0, q.Workers*q.BatchSize)
		if err != nil || len(ps) == 0 {
			return n, err
		}
		var wg sync.WaitGroup
		errs := make([]error, 0, len(ps))
		var mu sync.Mutex
		for start := 0; start < len(ps); start += q.BatchSize {
			batch := ps[start:min(start+q.BatchSize, len(ps))]
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, q.SettleTimeout)
				defer cancel()
				if err := q.Settler.SettleQueued(sctx, batch); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		n += len(ps)
		if err := errors.Join(errs...); err != nil {
			return n, err
		}
	}
}

func randomHolder() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
