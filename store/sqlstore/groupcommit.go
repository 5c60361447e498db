package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/payper/payper/store"
)

// maxGroup bounds how many channel charges share one transaction.
const maxGroup = 256

// chargeGroup commits concurrent channel charges together: one transaction, one fsync, for every
// charge that arrived while the previous group was committing. Each charge is still its own
// compare-and-set and gets its own answer. On a backend with a single writer connection (SQLite)
// this is what lets charges keep up with requests.
type chargeGroup struct {
	s    *Store
	reqs chan *chargeReq
	stop chan struct{}
	done chan struct{}

	mu      sync.RWMutex // held for reading while queueing, for writing to stop queueing
	stopped bool
}

type chargeReq struct {
	args []any // the charge statement's arguments
	id   string
	what string
	err  chan error
}

func newChargeGroup(s *Store) *chargeGroup {
	g := &chargeGroup{s: s, reqs: make(chan *chargeReq, maxGroup), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// submit queues a charge and waits for its answer. The answer always comes: a charge once
// queued is committed or refused, never left in doubt because the caller gave up waiting.
func (g *chargeGroup) submit(r *chargeReq) error {
	r.err = make(chan error, 1)
	g.mu.RLock()
	if g.stopped {
		g.mu.RUnlock()
		return errClosed
	}
	g.reqs <- r
	g.mu.RUnlock()
	return <-r.err
}

// close stops queueing, answers what is queued, and waits for the committer to finish.
func (g *chargeGroup) close() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	close(g.stop)
	<-g.done
}

func (g *chargeGroup) run() {
	defer close(g.done)
	for {
		var first *chargeReq
		select {
		case first = <-g.reqs:
		case <-g.stop:
			g.drain()
			return
		}
		group := []*chargeReq{first}
	collect:
		for len(group) < maxGroup {
			select {
			case r := <-g.reqs:
				group = append(group, r)
			default:
				break collect
			}
		}
		g.commit(group)
	}
}

// drain refuses what is still queued at close.
func (g *chargeGroup) drain() {
	for {
		select {
		case r := <-g.reqs:
			r.err <- errClosed
		default:
			return
		}
	}
}

// commit runs the group's compare-and-sets in one transaction. A charge whose row did not change
// is told why (unknown channel or moved state); the others are committed together.
func (g *chargeGroup) commit(group []*chargeReq) {
	s := g.s
	// Detached from every caller: the group commits or fails as a whole.
	ctx := context.Background()
	results := make([]error, len(group))
	err := s.withRetry(ctx, func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i, r := range group {
			res, err := tx.ExecContext(ctx, s.cq.charge, r.args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			results[i] = nil
			if n == 1 {
				continue
			}
			var version int64
			err = tx.QueryRowContext(ctx, s.cq.state, r.id).Scan(&version)
			switch {
			case err == nil:
				results[i] = fmt.Errorf("%s: %w", r.what, store.ErrConflict)
			case errors.Is(err, sql.ErrNoRows):
				results[i] = fmt.Errorf("%s: %w", r.what, store.ErrNotFound)
			default:
				return err
			}
		}
		return tx.Commit()
	})
	for i, r := range group {
		if err != nil {
			r.err <- fmt.Errorf("%s: %w", r.what, err)
			continue
		}
		r.err <- results[i]
	}
}
