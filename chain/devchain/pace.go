package devchain

import (
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
)

// sealer seals the dev chain's blocks in place of the simulated beacon's own on-demand loop.
//
// A block's timestamp is the wall clock's second, but at least its parent's plus one. geth's dev
// mode seals a block whenever a transaction arrives, so a burst of transactions seals many
// blocks a second and pushes the chain's clock ahead of the wall clock, by a second per block;
// authorizations whose window is judged by the wall clock then fail or revert on chain. The
// sealer paces blocks instead: a block is sealed once the wall clock has reached the second after
// its parent's timestamp, and it takes every transaction that arrived meanwhile. So at most one
// block is sealed per second, its timestamp is the current second, and the chain's clock never
// runs ahead. A transaction that arrives when no block was sealed in the current second is mined
// at once; under load, one waits for the next second at most.
//
// With a period, blocks come on a fixed beat instead, empty or not, as on a public chain.
type sealer struct {
	beacon *catalyst.SimulatedBeacon
	pool   *txpool.TxPool
	chain  *core.BlockChain
	pace   pacing

	mu       sync.Mutex // one seal at a time: the beacon is not safe for concurrent use
	lastSeal time.Time  // wall time of the last seal; guarded by mu

	wake chan struct{} // transactions arrived; capacity 1
	quit chan struct{}
	jobs sync.WaitGroup
}

// pacing is when the sealer seals: on demand, paced to a block a second unless unpaced, or every
// period.
type pacing struct {
	unpaced bool
	period  time.Duration
}

func newSealer(backend *eth.Ethereum, beacon *catalyst.SimulatedBeacon, pace pacing) *sealer {
	return &sealer{
		beacon: beacon, pool: backend.TxPool(), chain: backend.BlockChain(), pace: pace,
		// As if a block was just sealed: a reopened chain that is ahead gets its next block a
		// second from now.
		lastSeal: time.Now(),
		wake:     make(chan struct{}, 1), quit: make(chan struct{}),
	}
}

// Start implements node.Lifecycle.
func (s *sealer) Start() error {
	events := make(chan core.NewTxsEvent)
	sub := s.pool.SubscribeTransactions(events, true)
	// The pool sends new-transaction events from its reorganisation loop, which a seal waits
	// for (through Sync): events are drained apart from sealing, or the two would wait on each
	// other.
	s.jobs.Go(func() {
		defer sub.Unsubscribe()
		for {
			select {
			case <-events:
				select {
				case s.wake <- struct{}{}:
				default:
				}
			case <-sub.Err():
				return
			case <-s.quit:
				return
			}
		}
	})
	if s.pace.period > 0 {
		s.jobs.Go(s.beat)
	} else {
		s.jobs.Go(s.loop)
	}
	return nil
}

// beat seals a block every period, whatever the pool holds, on a schedule that does not drift
// by the time each seal takes.
func (s *sealer) beat() {
	next := time.Now().Add(s.pace.period)
	for {
		select {
		case <-time.After(time.Until(next)):
			s.seal()
		case <-s.quit:
			return
		}
		next = next.Add(s.pace.period)
		if now := time.Now(); next.Before(now) {
			next = now.Add(s.pace.period) // a seal took longer than a period: skip the beats missed
		}
	}
}

// Stop implements node.Lifecycle. It is registered after the eth service, so it stops first.
func (s *sealer) Stop() error {
	close(s.quit)
	s.jobs.Wait()
	return nil
}

// loop seals a block whenever transactions wait in the pool and the pace allows.
func (s *sealer) loop() {
	for {
		if executable, _ := s.pool.Stats(); executable == 0 {
			select {
			case <-s.wake:
			case <-s.quit:
				return
			}
			continue
		}
		if wait := time.Until(s.next()); wait > 0 {
			select {
			case <-time.After(wait):
			case <-s.quit:
				return
			}
		}
		s.seal()
	}
}

// next is when the next block may be sealed.
func (s *sealer) next() time.Time {
	if s.pace.unpaced {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return nextSeal(s.chain.CurrentBlock().Time, s.lastSeal)
}

// nextSeal is when a block on a head with timestamp headTime may be sealed: once the wall clock
// has reached the second after headTime, so that the block's timestamp is not ahead of the wall
// clock. A chain that is ahead already (moved by AdjustTime, or reopened after running ahead)
// is not stalled until the wall clock catches up: it gets a block a second after the last seal,
// which keeps its lead from growing.
func nextSeal(headTime uint64, lastSeal time.Time) time.Time {
	next := time.Unix(int64(headTime)+1, 0)
	if paced := lastSeal.Add(time.Second); paced.Before(next) {
		return paced
	}
	return next
}

// seal seals one block with what the pool holds, then lets the pool drop what was mined, so
// that the next look at it does not see them as waiting.
func (s *sealer) seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beacon.Commit()
	s.lastSeal = time.Now()
	_ = s.pool.Sync() // fails only when the pool is shutting down
}

// adjustTime seals an empty block d after the head; see Chain.AdjustTime.
func (s *sealer) adjustTime(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.beacon.AdjustTime(d); err != nil {
		return err
	}
	s.lastSeal = time.Now()
	return nil
}
