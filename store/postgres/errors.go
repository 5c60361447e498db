package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlstore"
)

// SQLSTATE codes this package distinguishes. See the PostgreSQL manual,
// appendix "PostgreSQL Error Codes".
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	classIntegrity           = "23"
	classDataException       = "22"
)

// mapError turns a driver error into a store error. Constraint and data
// errors mean the caller sent something the schema refuses; everything
// else (connection failures, shutdown, read-only, out of disk, timeouts)
// means the database cannot serve, so callers fail closed.
func mapError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return sqlstore.Unavailable(err)
	}
	switch {
	case pgErr.Code == codeUniqueViolation:
		return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
	case strings.HasPrefix(pgErr.Code, classIntegrity), strings.HasPrefix(pgErr.Code, classDataException):
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	default:
		return sqlstore.Unavailable(err)
	}
}

// retryable reports errors after which the statement was rolled back and
// may simply run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == codeSerializationFailure || pgErr.Code == codeDeadlockDetected
}
