package sqlite

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlstore"
)

// mapError turns a driver error into a store error. Anything that is not a
// recognised constraint violation is treated as the database being
// unavailable, so callers fail closed.
func mapError(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return sqlstore.Unavailable(err)
	}
	switch code := e.Code(); {
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
	case code&0xff == sqlite3.SQLITE_CONSTRAINT, code&0xff == sqlite3.SQLITE_MISMATCH,
		code&0xff == sqlite3.SQLITE_TOOBIG, code&0xff == sqlite3.SQLITE_RANGE:
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	default:
		// BUSY and LOCKED past the retries, FULL, IOERR, READONLY, CORRUPT,
		// CANTOPEN, NOTADB…
		return sqlstore.Unavailable(err)
	}
}

// retryable reports lock contention: the statement did not run and may be
// repeated.
func retryable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	primary := e.Code() & 0xff
	return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
}
