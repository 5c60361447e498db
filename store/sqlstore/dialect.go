package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/payper/payper/store"
)

// Dialect is what differs between backends.
type Dialect struct {
	// Name labels errors and logs, e.g. "sqlite".
	Name string
	// NumberedParams makes queries use $1, $2, … instead of ?.
	NumberedParams bool
	// TimeValue converts a UTC time, already truncated to microseconds,
	// into a query argument for a timestamp column.
	TimeValue func(time.Time) any
	// MapError turns a non-nil driver error into an error wrapping one of
	// the store sentinels (ErrDuplicate, ErrInvalid, ErrUnavailable).
	MapError func(error) error
	// Retryable reports whether a failed statement did not take effect and
	// may be run again as is (lock contention, serialization failure).
	Retryable func(error) bool
	// Migrations holds files named NNNN_description.sql, applied in
	// ascending order; numbers may have gaps (see loadMigrations).
	Migrations fs.FS
	// LockMigrations, if set, runs first inside the migration transaction
	// and must block other processes migrating the same database until
	// that transaction ends. Backends whose BEGIN already takes a database
	// wide write lock leave it nil.
	LockMigrations func(ctx context.Context, tx *sql.Tx) error
	// GroupCharges commits concurrent channel charges in one transaction. Backends with a
	// single writer connection set it: otherwise each charge waits for its own fsync.
	GroupCharges bool
	// ForUpdate is appended to a SELECT inside a write transaction to lock the rows it reads
	// (" FOR UPDATE"); empty where a write transaction already excludes other writers.
	ForUpdate string
}

func (d *Dialect) validate() error {
	switch {
	case d.Name == "":
		return fmt.Errorf("sqlstore: dialect without a name")
	case d.TimeValue == nil, d.MapError == nil, d.Retryable == nil, d.Migrations == nil:
		return fmt.Errorf("sqlstore: dialect %s is incomplete", d.Name)
	}
	return nil
}

// bind rewrites ? placeholders for dialects that number them. Queries in
// this package never contain a literal question mark.
func (d *Dialect) bind(query string) string {
	if !d.NumberedParams {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Unavailable wraps err so that it matches store.ErrUnavailable while
// keeping the cause (for example context.DeadlineExceeded) reachable.
func Unavailable(err error) error {
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}
