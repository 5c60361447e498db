package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
)

// boundStatement is one statement ready to run: prepared, or plain text on a pool,
// connection or transaction.
type boundStatement interface {
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
}

type plainStatement struct {
	on interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	query string
}

func (p plainStatement) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return p.on.ExecContext(ctx, p.query, args...)
}

func (p plainStatement) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return p.on.QueryRowContext(ctx, p.query, args...)
}

// statements prepares write statements once on the writer: on the hot path parsing a statement
// costs more than running it.
type statements struct {
	mu       sync.Mutex
	prepared map[string]*sql.Stmt
}

// get returns query prepared on db, or nil when preparing failed (the caller runs the plain
// text, whose error, if the database is really gone, is the one reported).
//
// The lock is not held while preparing: preparing waits for a connection, which a transaction
// may hold while it looks up a statement of its own.
func (st *statements) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	if stmt := st.lookup(query); stmt != nil {
		return stmt
	}
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if have, ok := st.prepared[query]; ok {
		stmt.Close() // prepared meanwhile by another caller
		return have
	}
	if st.prepared == nil {
		st.prepared = map[string]*sql.Stmt{}
	}
	st.prepared[query] = stmt
	return stmt
}

// lookup returns query if it is prepared already, else nil.
func (st *statements) lookup(query string) *sql.Stmt {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.prepared[query]
}

func (st *statements) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, stmt := range st.prepared {
		stmt.Close()
	}
	st.prepared = nil
}

// writeStatement runs query, a write, through fn, with the context fn must use. A relaxed write,
// on a backend with a GroupSync, joins a write group: it commits with other relaxed writes in one
// transaction under the relaxed durability setting, so it survives the process dying, and the
// next flushed commit makes it durable. Other writes run on their own, flushed.
func (s *Store) writeStatement(ctx context.Context, relaxed bool, query string, fn func(context.Context, boundStatement) error) error {
	var group *writeGroup
	if relaxed {
		group = s.writes
	}
	return s.statementIn(ctx, group, query, fn)
}

// statementIn runs query through fn in group's next transaction, or on its own when group is nil.
func (s *Store) statementIn(ctx context.Context, group *writeGroup, query string, fn func(context.Context, boundStatement) error) error {
	stmt := s.stmts.get(ctx, s.write, query)
	if group != nil {
		return group.submit(func(gctx context.Context, tx *sql.Tx) error {
			if stmt == nil {
				return fn(gctx, plainStatement{tx, query})
			}
			return fn(gctx, tx.StmtContext(gctx, stmt))
		})
	}
	if stmt == nil {
		return fn(ctx, plainStatement{s.write, query})
	}
	return fn(ctx, stmt)
}

// relaxedTx runs fn in a transaction on one writer connection with the relaxed durability
// setting, restored afterwards; a connection that cannot be restored is dropped, never left
// relaxed for other writes.
func (s *Store) relaxedTx(ctx context.Context, fn func(*sql.Tx) error) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, s.relax.Relax); err != nil {
		return err
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), s.relax.Restore); err != nil {
			s.log.Error("restoring the writer's durability setting failed; dropping the connection", "backend", s.dialect.Name, "err", err)
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return commitTx(ctx, conn, fn)
}

// prepared is query on the writer, prepared once (plain text when preparing failed).
func (s *Store) prepared(ctx context.Context, query string) boundStatement {
	if stmt := s.stmts.get(ctx, s.write, query); stmt != nil {
		return stmt
	}
	return plainStatement{s.write, query}
}

// inTx is query in tx, using the writer's statement prepared at open (see prepareTxStatements)
// when there is one: a transaction of several statements on the hot path would otherwise parse
// each of them every time. It never prepares: with a single writer connection, held by tx,
// preparing on the pool would wait for ever.
func (s *Store) inTx(ctx context.Context, tx *sql.Tx, query string) boundStatement {
	if stmt := s.stmts.lookup(query); stmt != nil {
		return tx.StmtContext(ctx, stmt)
	}
	return plainStatement{tx, query}
}

// prepareTxStatements prepares, outside any transaction, the statements that hot-path
// transactions run. A statement that cannot be prepared now runs as plain text.
func (s *Store) prepareTxStatements(ctx context.Context) {
	for _, q := range []string{s.aq.ensure, s.aq.exposure, s.aq.reserve, s.aq.setExposure, s.aq.lockPayment,
		s.aq.settle, s.aq.fail, s.aq.release, s.aq.block} {
		s.stmts.get(ctx, s.write, q)
	}
}

// durableStatement runs query, a write, through fn. On a backend with a GroupSync it joins the
// durable write group: concurrent writes share one transaction and one flush of the log, and
// each is answered only once the flush is done. Otherwise it runs on its own, as durable as any
// write. sql.ErrNoRows from fn is fn's answer, not a failure of the others.
func (s *Store) durableStatement(ctx context.Context, query string, fn func(context.Context, boundStatement) error) error {
	if err := ctx.Err(); err != nil {
		return err // a caller that gave up starts no write (the group runs detached from it)
	}
	return s.statementIn(ctx, s.durable, query, fn)
}

// serialFlush runs flush one call at a time: the durable group's committer and the channel
// charges' flusher may both ask.
func serialFlush(flush func() error) func() error {
	var mu sync.Mutex
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		return flush()
	}
}
