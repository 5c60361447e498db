// Package sqlstore implements store.Store on database/sql for the SQLite and
// PostgreSQL backends: the queries, row scanning, input normalisation, the
// migration runner and the bounded retry loop. Each backend supplies a
// Dialect (placeholders, time encoding, error mapping, migrations, locking)
// and its own driver; this package imports no driver.
package sqlstore
