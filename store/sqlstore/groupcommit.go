package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/payper/payper/store"
)

// maxGroup bounds how many channel charges share one transaction.
const maxGroup = 256

// pendingFlushes is how many committed groups may wait for a flush beyond the one the flusher
// holds. None: the committer hands a group over only once the flusher is free, so while the disk
// works the next group grows instead of being cut into many small commits, each costing CPU.
const pendingFlushes = 0

// chargeGroup commits concurrent channel charges together: one transaction, one fsync, for every
// charge that arrived while the previous group was committing. Each charge is still its own
// compare-and-set and gets its own answer. On a backend with a single writer connection (SQLite)
// this is what lets charges keep up with requests.
//
// With a GroupSync the flush leaves the committer's path: groups commit without waiting for the
// disk, a second goroutine flushes the log once for every group committed meanwhile, and only
// then are those groups answered. No charge is acknowledged before it is durable, and the
// committer works on the next group while the disk works on the last.
type chargeGroup struct {
	s      *Store
	stmts  map[string]*sql.Stmt // prepared once each: parsing a statement costs more than running it
	reqs   chan *chargeReq
	stop   chan struct{}
	done   chan struct{}
	sync   *GroupSync
	synced chan committedGroup // committed groups waiting for their flush; nil without sync

	mu      sync.RWMutex // held for reading while queueing, for writing to stop queueing
	stopped bool
}

// groupOp is what a queued request does.
type groupOp int

const (
	opCharge groupOp = iota // a charge compare-and-set (query)
	opFinish                // remove an in-flight entry: its charge is final
)

type chargeReq struct {
	op    groupOp
	query string // opCharge: the charge statement, with or without an in-flight entry
	args  []any  // the statement's arguments
	id    string
	what  string
	err   chan error
}

// committedGroup is a group whose transaction has ended, with each charge's answer.
type committedGroup struct {
	reqs    []*chargeReq
	results []error
	wrote   bool // false when the transaction failed as a whole
}

// answer sends each charge its result, or flushErr when the flush covering the group failed.
func (c committedGroup) answer(flushErr error) {
	for i, r := range c.reqs {
		if flushErr != nil && c.wrote {
			r.err <- fmt.Errorf("%s: %w", r.what, flushErr)
			continue
		}
		r.err <- c.results[i]
	}
}

func newChargeGroup(s *Store, sync *GroupSync) *chargeGroup {
	g := &chargeGroup{s: s, stmts: map[string]*sql.Stmt{}, reqs: make(chan *chargeReq, maxGroup), stop: make(chan struct{}),
		done: make(chan struct{}), sync: sync}
	if sync == nil {
		go func() {
			defer close(g.done)
			g.run()
		}()
		return g
	}
	g.synced = make(chan committedGroup, pendingFlushes)
	go func() {
		defer close(g.synced)
		g.run()
	}()
	go func() {
		defer close(g.done)
		g.flush()
	}()
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

// statement returns query for tx: the prepared statement when prepare (called before the
// transaction began, since on SQLite the transaction holds the only writer connection)
// succeeded, else the plain query.
func (g *chargeGroup) statement(ctx context.Context, tx *sql.Tx, query string) interface {
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
} {
	stmt := g.stmts[query]
	if stmt == nil {
		return unprepared{tx, query}
	}
	return tx.StmtContext(ctx, stmt)
}

// prepare prepares the group's statements once. A failure is not fatal: the next group tries
// again and this one runs the plain query, whose error (if the database is really gone) is
// reported.
func (g *chargeGroup) prepare(ctx context.Context) {
	for _, q := range []string{g.s.cq.charge, g.s.cq.chargeInFlight, g.s.cq.finish} {
		if g.stmts[q] != nil {
			continue
		}
		if stmt, err := g.s.write.PrepareContext(ctx, q); err == nil {
			g.stmts[q] = stmt
		}
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
	for _, stmt := range g.stmts {
		stmt.Close()
	}
}

// run collects and commits groups until close.
func (g *chargeGroup) run() {
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
		c := g.commit(group)
		if g.synced == nil {
			c.answer(nil)
			continue
		}
		if rest := c.answerFinishes(); len(rest.reqs) > 0 {
			g.synced <- rest
		}
	}
}

// answerFinishes answers the group's finishes as soon as the group is committed, without waiting
// for the flush, and returns the rest. A committed finish survives a crash of the process (the
// operating system has it); only a crash of the machine before the next flush could undo one,
// and then the charge, back in flight, expires and is given back: the provider, never the payer,
// loses that one request's price. Waiting for the disk instead would add a flush to every paid
// request.
func (c committedGroup) answerFinishes() committedGroup {
	rest := committedGroup{wrote: c.wrote}
	for i, r := range c.reqs {
		if r.op == opFinish {
			r.err <- c.results[i]
			continue
		}
		rest.reqs = append(rest.reqs, r)
		rest.results = append(rest.results, c.results[i])
	}
	return rest
}

// flush answers committed groups after a flush that began once they were committed: every group
// waiting when a flush starts shares it. A failed flush fails its groups' charges as
// unavailable: their rows may or may not survive a crash, so none of them may be served.
func (g *chargeGroup) flush() {
	for c := range g.synced {
		waiting := []committedGroup{c}
	collect:
		for {
			select {
			case more, ok := <-g.synced:
				if !ok {
					break collect
				}
				waiting = append(waiting, more)
			default:
				break collect
			}
		}
		var err error
		if g.anyCommitted(waiting) {
			if err = g.sync.Flush(); err != nil {
				g.s.log.Error("flushing committed channel charges failed", "backend", g.s.dialect.Name, "err", err)
				err = Unavailable(fmt.Errorf("flush: %w", err))
			}
		}
		for _, c := range waiting {
			c.answer(err)
		}
	}
}

// anyCommitted reports whether a flush is needed: a group that failed as a whole wrote nothing.
// Groups whose charges all conflicted are still flushed, since their answers describe rows other
// groups may have changed without a flush yet.
func (g *chargeGroup) anyCommitted(groups []committedGroup) bool {
	for _, c := range groups {
		if c.wrote {
			return true
		}
	}
	return false
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

// commit runs the group's requests in one transaction. A charge whose row did not change is told
// why (unknown channel or moved state), a finish whose in-flight charge is gone is told
// ErrNotFound; the others are committed together. A group that failed as a whole tells every
// request the error.
func (g *chargeGroup) commit(group []*chargeReq) committedGroup {
	s := g.s
	// Detached from every caller: the group commits or fails as a whole.
	ctx := context.Background()
	results := make([]error, len(group))
	g.prepare(ctx)
	err := s.withRetry(ctx, func() error {
		return g.inTx(ctx, func(tx *sql.Tx) error {
			for i, r := range group {
				query := r.query
				if r.op == opFinish {
					query = s.cq.finish
				}
				res, err := g.statement(ctx, tx, query).ExecContext(ctx, r.args...)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				results[i] = nil
				if r.op == opFinish {
					if n != 1 {
						results[i] = fmt.Errorf("%s: %w", r.what, store.ErrNotFound)
					}
					continue
				}
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
			return nil
		})
	})
	if err != nil {
		for i, r := range group {
			results[i] = fmt.Errorf("%s: %w", r.what, err)
		}
		return committedGroup{reqs: group, results: results}
	}
	return committedGroup{reqs: group, results: results, wrote: true}
}

// inTx runs fn in a write transaction and commits it. With a GroupSync the transaction runs on
// the writer connection with the relaxed durability setting, restored afterwards; a connection
// that cannot be restored is thrown away rather than left relaxed for other writes.
func (g *chargeGroup) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if g.sync == nil {
		return commitTx(ctx, g.s.write, fn)
	}
	conn, err := g.s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, g.sync.Relax); err != nil {
		return err
	}
	defer func() {
		if _, err := conn.ExecContext(ctx, g.sync.Restore); err != nil {
			g.s.log.Error("restoring the writer's durability setting failed; dropping the connection", "backend", g.s.dialect.Name, "err", err)
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return commitTx(ctx, conn, fn)
}

// commitTx runs fn in a transaction begun on db (a pool or one connection) and commits it.
func commitTx(ctx context.Context, db interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
