package evm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// Lifetime of a head follower.
const (
	// followLinger is how long the follower keeps following after its last waiter left, so that
	// settlements in a row find it running and in step with the chain.
	followLinger = 30 * time.Second
	// resubscribeMin and resubscribeMax bound the pause, spent polling, before a failed
	// subscription is tried again.
	resubscribeMin = 5 * time.Second
	resubscribeMax = time.Minute
)

// headFollower follows the chain's head for every waiter of one client: one subscription to new
// heads over a WebSocket endpoint when the client has one, otherwise one poller paced by the
// chain's block time (see headPacer). Each new head wakes every waiter, which then looks at its
// receipt; none of them polls on its own. The follower runs from the first waiter's arrival until
// followLinger after the last one left.
type headFollower struct {
	c      *Client
	ctx    context.Context // ends when the client is closed
	cancel context.CancelFunc
	kick   chan struct{} // a transaction was sent or a waiter arrived; capacity 1

	mu       sync.Mutex
	watchers map[*headWatch]struct{}
	head     uint64
	running  bool
	closed   bool
	leftAt   time.Time // when the last waiter left
	jobs     sync.WaitGroup

	polls      atomic.Int64 // head polls made (tests read it)
	subscribed atomic.Bool  // following a subscription now (tests read it)
	onSchedule atomic.Bool  // polling on the chain's timed schedule (tests read it)
}

func newHeadFollower(c *Client) *headFollower {
	// Detached from any caller: the follower serves every waiter of the client, and stops when
	// the client is closed.
	ctx, cancel := context.WithCancel(context.Background())
	return &headFollower{c: c, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1), watchers: map[*headWatch]struct{}{}}
}

// headWatch is one waiter's view of the follower. Close it when done.
type headWatch struct {
	f  *headFollower
	ch chan struct{}
}

// Changed receives when a new head arrived, or after a quiet spell, so that the waiter looks
// at its receipt anyway.
func (w *headWatch) Changed() <-chan struct{} { return w.ch }

// Head is the newest head seen, 0 before the first.
func (w *headWatch) Head() uint64 { return w.f.latest() }

func (f *headFollower) latest() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// Close stops the watch.
func (w *headWatch) Close() {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.watchers, w)
	if len(f.watchers) == 0 {
		f.leftAt = time.Now()
	}
}

// watch registers a waiter, starting the follower if it is not running.
func (f *headFollower) watch() *headWatch {
	w := &headWatch{f: f, ch: make(chan struct{}, 1)}
	f.mu.Lock()
	f.watchers[w] = struct{}{}
	if !f.running && !f.closed {
		f.running = true
		f.jobs.Add(1)
		go f.run()
	}
	f.mu.Unlock()
	f.nudge()
	return w
}

// nudge tells the follower that a transaction was just sent: a chain that mines on demand has a
// block for it at once.
func (f *headFollower) nudge() {
	if f == nil {
		return // a client built by hand in a test
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// close stops the follower and waits for it.
func (f *headFollower) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.jobs.Wait()
}

// publish makes head the newest head and wakes every waiter (also when it is the same head: the
// quiet spell's reminder).
func (f *headFollower) publish(head uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.head = head
	for w := range f.watchers {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// stopIfIdle marks the follower stopped, and reports so, when no waiter arrived for followLinger
// after the last one left or the client is closed. Under the same lock as watch, so that a
// waiter arriving now starts a new run rather than joining one that ends.
func (f *headFollower) stopIfIdle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() == nil && (len(f.watchers) > 0 || time.Since(f.leftAt) < followLinger) {
		return false
	}
	f.running = false
	return true
}

// run follows heads until the follower is idle: over a subscription when an endpoint offers one,
// by polling otherwise and while a failed subscription waits to be tried again.
func (f *headFollower) run() {
	defer f.jobs.Done()
	defer f.subscribed.Store(false)
	defer f.onSchedule.Store(false)
	p := f.seed()
	var resubscribeAt time.Time
	pause := resubscribeMin
	for {
		e := f.subscribable()
		if e == nil || time.Now().Before(resubscribeAt) {
			until := resubscribeAt
			if e == nil {
				until = time.Time{}
			}
			if f.pollUntil(p, until) {
				return
			}
			continue
		}
		stopped, err := f.follow(e, p)
		if stopped {
			return
		}
		f.c.log.Warn("following new heads over a subscription failed; polling until it is tried again",
			"endpoint", e.name, "retry_in", pause, "err", e.wrap(err))
		resubscribeAt = time.Now().Add(pause)
		pause = min(2*pause, resubscribeMax)
	}
}

// seed reads the head and the timestamps of the blocks just below it, to start the pacer with the
// chain's block time. Without them the pacer probes, and times the chain from the arrivals it
// sees.
func (f *headFollower) seed() *headPacer {
	p := &headPacer{}
	sentAt := time.Now()
	n, err := f.c.BlockNumber(f.ctx)
	if err != nil {
		if f.ctx.Err() == nil {
			f.c.log.Warn("reading the chain's head to pace head polls failed", "err", err)
		}
		return p
	}
	p.observe(n, sentAt)
	f.mu.Lock()
	f.head = n // no waiter is woken: each one looked when it arrived
	f.mu.Unlock()
	times, err := f.timestamps(n)
	if err != nil {
		f.c.log.Warn("reading recent blocks to pace head polls failed", "err", err)
		return p
	}
	p.seed(seedFromTimestamps(times, time.Now()))
	f.c.log.Debug("following new heads", "head", n, "block_time", p.interval, "on_schedule", p.periodic)
	return p
}

// blockStamp is the part of a block seed reads.
type blockStamp struct {
	Timestamp hexutil.Uint64 `json:"timestamp"`
}

// timestamps reads the timestamps of up to seedBlocks blocks from n down, newest first, in one
// batch. Genesis is left out: its timestamp is whatever its author chose.
func (f *headFollower) timestamps(n uint64) ([]uint64, error) {
	count := min(n, seedBlocks)
	stamps := make([]*blockStamp, count)
	err := f.c.read(f.ctx, func(ctx context.Context, e *endpoint) error {
		batch := make([]rpc.BatchElem, count)
		for i := range batch {
			batch[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.Uint64(n - uint64(i)), false}, Result: &stamps[i]}
		}
		if err := e.rpc.BatchCallContext(ctx, batch); err != nil {
			return err
		}
		for _, b := range batch {
			if b.Error != nil {
				return b.Error
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	times := make([]uint64, 0, count)
	for _, s := range stamps {
		if s == nil {
			return nil, errors.New("a recent block is missing")
		}
		times = append(times, uint64(s.Timestamp))
	}
	return times, nil
}

// pollUntil polls the head, paced by p, until the follower is idle (it reports true) or until
// until (unless zero) has passed.
func (f *headFollower) pollUntil(p *headPacer, until time.Time) (stopped bool) {
	lastPublished := time.Now()
	failing := false
	timer := time.NewTimer(p.next(lastPublished))
	defer timer.Stop()
	for {
		if f.waitOrKick(timer, p) {
			timer.Reset(p.next(time.Now()))
			continue
		}
		if f.stopIfIdle() {
			return true
		}
		sentAt := time.Now()
		head, err := f.c.BlockNumber(f.ctx)
		f.polls.Add(1)
		switch {
		case err != nil && !failing && f.ctx.Err() == nil:
			failing = true
			f.c.log.Warn("polling the chain's head failed; receipts are looked at less often until it answers", "err", err)
		case err == nil && failing:
			failing = false
			f.c.log.Info("polling the chain's head works again")
		}
		now := time.Now()
		if err == nil && p.observe(head, sentAt) || now.Sub(lastPublished) >= p.quiet() {
			f.publish(p.head)
			lastPublished = now
		}
		f.onSchedule.Store(p.timed())
		if !until.IsZero() && !now.Before(until) {
			return false
		}
		wait := min(p.next(now), p.quiet()-now.Sub(lastPublished))
		if !until.IsZero() {
			wait = min(wait, until.Sub(now))
		}
		timer.Reset(wait)
	}
}

// waitOrKick waits for timer, or for a kick (it tells the pacer and reports true: the caller plans
// the next poll again). It returns false when the timer fired or the client closed.
func (f *headFollower) waitOrKick(timer *time.Timer, p *headPacer) (kicked bool) {
	select {
	case <-timer.C:
		return false
	case <-f.ctx.Done():
		return false
	case <-f.kick:
		p.kick(time.Now())
		return true
	}
}

// follow follows e's new-heads subscription until it fails (err) or the follower is idle
// (stopped). A quiet spell is checked with a poll: a subscription that went silent while the
// chain moved is dropped for polling.
func (f *headFollower) follow(e *endpoint, p *headPacer) (stopped bool, err error) {
	cctx, cancel := f.c.callCtx(f.ctx)
	if !e.verified.Load() {
		if err := f.c.verify(cctx, e); err != nil {
			cancel()
			return f.ctx.Err() != nil, err
		}
	}
	heads := make(chan *types.Header, 64)
	sub, err := e.eth.SubscribeNewHead(cctx, heads)
	cancel()
	if err != nil {
		return f.ctx.Err() != nil, err
	}
	defer sub.Unsubscribe()
	f.subscribed.Store(true)
	defer f.subscribed.Store(false)
	quiet := time.NewTimer(p.quiet())
	defer quiet.Stop()
	for {
		select {
		case h := <-heads:
			if p.observe(h.Number.Uint64(), time.Now()) {
				f.publish(p.head)
			}
			if f.stopIfIdle() {
				return true, nil
			}
			quiet.Reset(p.quiet())
		case err := <-sub.Err():
			if err == nil {
				err = errors.New("subscription ended")
			}
			return f.ctx.Err() != nil, err
		case <-f.ctx.Done():
			return true, nil
		case <-quiet.C:
			if f.stopIfIdle() {
				return true, nil
			}
			head, err := f.c.BlockNumber(f.ctx)
			f.polls.Add(1)
			moved := err == nil && p.observe(head, time.Now())
			f.publish(p.head)
			if moved {
				return false, errors.New("the chain moved on without the subscription announcing it")
			}
			quiet.Reset(p.quiet())
		}
	}
}

// subscribable is the first WebSocket endpoint that serves the chain and whose breaker lets
// calls through, or nil.
func (f *headFollower) subscribable() *endpoint {
	for _, e := range f.c.eps {
		if !isWebSocket(e.url) || e.wrongChain.Load() {
			continue
		}
		if _, refusing := e.br.Refusing(); !refusing {
			return e
		}
	}
	return nil
}

func isWebSocket(rawURL string) bool {
	u := strings.ToLower(rawURL)
	return strings.HasPrefix(u, "ws://") || strings.HasPrefix(u, "wss://")
}
