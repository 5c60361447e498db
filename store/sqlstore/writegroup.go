package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// writeGroup commits concurrent small writes that may skip the disk flush (relaxed writes, such
// as the records of payment identifiers) together: one transaction for every write that arrived
// while the previous one was committing. On a backend with a single writer connection each of
// them would otherwise pay for a commit of its own, twice per paid request. Every write still
// gets its own answer; a write is never left in doubt because its caller stopped waiting.
type writeGroup struct {
	s *Store
	// flush, when set, makes each committed group durable before it is answered: the group
	// commits under the relaxed setting and is then flushed once for all its writes.
	flush func() error
	reqs  chan *groupedWrite
	stop  chan struct{}
	done  chan struct{}

	mu      sync.RWMutex // held for reading while queueing, for writing to stop queueing
	stopped bool
}

// groupedWrite is one write: fn runs in the group's transaction. sql.ErrNoRows from fn is an
// answer (a conditional write that matched nothing); any other error fails the transaction.
type groupedWrite struct {
	fn  func(ctx context.Context, tx *sql.Tx) error
	err chan error
}

func newWriteGroup(s *Store, flush func() error) *writeGroup {
	g := &writeGroup{s: s, flush: flush, reqs: make(chan *groupedWrite, maxGroup), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		g.run()
	}()
	return g
}

// submit queues fn and waits for its answer. fn runs with the group's context, not its
// caller's: one caller giving up must not fail the others' transaction.
func (g *writeGroup) submit(fn func(ctx context.Context, tx *sql.Tx) error) error {
	w := &groupedWrite{fn: fn, err: make(chan error, 1)}
	g.mu.RLock()
	if g.stopped {
		g.mu.RUnlock()
		return errClosed
	}
	g.reqs <- w
	g.mu.RUnlock()
	return <-w.err
}

func (g *writeGroup) close() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	close(g.stop)
	<-g.done
}

func (g *writeGroup) run() {
	for {
		var first *groupedWrite
		select {
		case first = <-g.reqs:
		case <-g.stop:
			for {
				select {
				case w := <-g.reqs:
					w.err <- errClosed
				default:
					return
				}
			}
		}
		group := []*groupedWrite{first}
	collect:
		for len(group) < maxGroup {
			select {
			case w := <-g.reqs:
				group = append(group, w)
			default:
				break collect
			}
		}
		g.commit(group)
	}
}

// commit runs the group in one relaxed transaction and answers each write.
func (g *writeGroup) commit(group []*groupedWrite) {
	ctx := context.Background() // detached: the group commits or fails as a whole
	answers := make([]error, len(group))
	err := g.s.withRetry(ctx, func() error {
		return g.s.relaxedTx(ctx, func(tx *sql.Tx) error {
			for i, w := range group {
				answers[i] = w.fn(ctx, tx)
				if answers[i] != nil && !errors.Is(answers[i], sql.ErrNoRows) {
					return answers[i]
				}
			}
			return nil
		})
	})
	if err == nil && g.flush != nil {
		if ferr := g.flush(); ferr != nil {
			// Committed, but not known to be on disk: no write of the group is acknowledged.
			err = fmt.Errorf("flush: %w", ferr)
		}
	}
	for i, w := range group {
		if err != nil {
			w.err <- err
			continue
		}
		w.err <- answers[i]
	}
}
