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
	stmt *sql.Stmt // the charge statement, prepared once: parsing it costs more than running it
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

// statement returns the charge statement for tx: the prepared one when prepare (called before
// the transaction began, since on SQLite the transaction holds the only writer connection)
// succeeded, else the plain query.
func (g *chargeGroup) statement(ctx context.Context, tx *sql.Tx) interface {
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
} {
	if g.stmt == nil {
		return unprepared{tx, g.s.cq.charge}
	}
	return tx.StmtContext(ctx, g.stmt)
}

// prepare prepares the charge statement once. A failure is not fatal: the next group tries again
// and this one runs the plain query, whose error (if the database is really gone) is reported.
func (g *chargeGroup) prepare(ctx context.Context) {
	if g.stmt != nil {
		return
	}
	if stmt, err := g.s.write.PrepareContext(ctx, g.s.cq.charge); err == nil {
		g.stmt = stmt
	}
}

type unprepared struct {
	tx    *sql.Tx
	query string
}

func (u unprepared) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return u.tx.ExecContext(ctx, u.query, args...)
}

// close stops queueing, answers what is queued, and waits for the committer to finish.
func (g *chargeGroup) close() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	close(g.stop)
	<-g.done
	if g.stmt != nil {
		g.stmt.Close()
	}
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
	g.prepare(ctx)
	err := s.withRetry(ctx, func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		charge := g.statement(ctx, tx)
		for i, r := range group {
			res, err := charge.ExecContext(ctx, r.args...)
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
