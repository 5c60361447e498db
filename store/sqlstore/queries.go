package sqlstore

// paymentColumns is the column list every payment query selects, in the
// order scanPayment expects.
const paymentColumns = `id, scheme, network, asset, payer, pay_to, amount, nonce, valid_before,
	method, route, resource, status, tx_hash, error_reason, created_at, updated_at, async, queued, payload`

// queries holds the statements after placeholder rewriting.
type queries struct {
	reserve       string
	getByID       string
	findLive      string
	stateByID     string
	unfinished    string
	markSubmitted string
	resubmit      string
	markSettled   string
	markFailed    string
	release       string
	markVanished  string
	recentSettled string
}

// The ON CONFLICT target names the partial unique index, so a concurrent
// duplicate becomes "no row returned" instead of an error, atomically and
// without a prior read.
const reserveSQL = `INSERT INTO payments (scheme, network, asset, payer, pay_to, amount, nonce,
	valid_before, method, route, resource, status, tx_hash, error_reason, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', '', '', ?, ?)
ON CONFLICT (network, asset, payer, nonce) WHERE status <> 'released' DO NOTHING
RETURNING id`

// Each transition is one compare-and-set UPDATE: the WHERE clause lists the
// states it may start from. The transitions that end an async payment's exposure leave async
// payments alone (syncOnly): those go through asyncTransition, which adjusts the exposure in
// the same transaction.
const syncOnly = ` AND async = 0`

const (
	markSubmittedSQL = `UPDATE payments SET status = 'submitted', tx_hash = ?, updated_at = ?
WHERE id = ? AND status = 'reserved'`
	resubmitSQL = `UPDATE payments SET tx_hash = ?, updated_at = ?
WHERE id = ? AND status = 'submitted'`
	markSettledSQL = `UPDATE payments SET status = 'settled', tx_hash = ?, error_reason = '', updated_at = ?
WHERE id = ? AND status IN ('reserved', 'submitted', 'vanished')`
	markVanishedSQL = `UPDATE payments SET status = 'vanished', error_reason = ?, updated_at = ?
WHERE id = ? AND status = 'settled'`
	markFailedSQL = `UPDATE payments SET status = 'failed', error_reason = ?, updated_at = ?
WHERE id = ? AND status IN ('reserved', 'submitted')`
	releaseSQL = `UPDATE payments SET status = 'released', error_reason = ?, updated_at = ?
WHERE id = ? AND status = 'reserved'`
)

func buildQueries(d *Dialect) queries {
	return queries{
		reserve: d.bind(reserveSQL),
		getByID: d.bind(`SELECT ` + paymentColumns + ` FROM payments WHERE id = ?`),
		findLive: d.bind(`SELECT ` + paymentColumns + ` FROM payments
WHERE network = ? AND asset = ? AND payer = ? AND nonce = ? AND status <> 'released'`),
		stateByID: d.bind(`SELECT status, tx_hash, async FROM payments WHERE id = ?`),
		unfinished: d.bind(`SELECT ` + paymentColumns + ` FROM payments
WHERE status IN ('reserved', 'submitted') ORDER BY id`),
		markSubmitted: d.bind(markSubmittedSQL),
		resubmit:      d.bind(resubmitSQL),
		markSettled:   d.bind(markSettledSQL + syncOnly),
		markFailed:    d.bind(markFailedSQL + syncOnly),
		release:       d.bind(releaseSQL + syncOnly),
		markVanished:  d.bind(markVanishedSQL),
		recentSettled: d.bind(`SELECT ` + paymentColumns + ` FROM payments
WHERE status IN ('settled', 'vanished') AND updated_at >= ? AND id < ? ORDER BY id DESC LIMIT ?`),
	}
}
