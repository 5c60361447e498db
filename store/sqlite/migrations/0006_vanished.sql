-- A settled payment whose transaction left the chain (a reorg deeper than the confirmations, or a
-- reset chain) becomes 'vanished'. SQLite cannot change a CHECK constraint in place, so the table
-- is rebuilt under the same name, ids and indexes.
CREATE TABLE payments_new (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	scheme       TEXT    NOT NULL,
	network      TEXT    NOT NULL,
	asset        TEXT    NOT NULL,
	payer        TEXT    NOT NULL,
	pay_to       TEXT    NOT NULL,
	amount       TEXT    NOT NULL,
	nonce        TEXT    NOT NULL,
	valid_before INTEGER NOT NULL,
	method       TEXT    NOT NULL,
	route        TEXT    NOT NULL,
	resource     TEXT    NOT NULL,
	status       TEXT    NOT NULL
		CHECK (status IN ('reserved', 'submitted', 'settled', 'failed', 'released', 'vanished')),
	tx_hash      TEXT    NOT NULL DEFAULT '',
	error_reason TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);

INSERT INTO payments_new (id, scheme, network, asset, payer, pay_to, amount, nonce, valid_before,
	method, route, resource, status, tx_hash, error_reason, created_at, updated_at)
SELECT id, scheme, network, asset, payer, pay_to, amount, nonce, valid_before,
	method, route, resource, status, tx_hash, error_reason, created_at, updated_at
FROM payments;

DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;

CREATE UNIQUE INDEX payments_live_key ON payments (network, asset, payer, nonce)
	WHERE status <> 'released';

CREATE INDEX payments_payer ON payments (payer, id);

CREATE INDEX payments_unfinished ON payments (id)
	WHERE status IN ('reserved', 'submitted');

-- The reconciler pages through recent settlements to check them against the chain again.
CREATE INDEX payments_recent_settled ON payments (updated_at, id)
	WHERE status IN ('settled', 'vanished');
