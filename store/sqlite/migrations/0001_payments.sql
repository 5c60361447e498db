-- Exact-scheme payments. Amounts are decimal TEXT (they reach 2^256-1);
-- times are Unix microseconds in UTC.
CREATE TABLE payments (
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
		CHECK (status IN ('reserved', 'submitted', 'settled', 'failed', 'released')),
	tx_hash      TEXT    NOT NULL DEFAULT '',
	error_reason TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);

-- One live payment per authorization: this index is the replay guard.
CREATE UNIQUE INDEX payments_live_key ON payments (network, asset, payer, nonce)
	WHERE status <> 'released';

CREATE INDEX payments_payer ON payments (payer, id);

CREATE INDEX payments_unfinished ON payments (id)
	WHERE status IN ('reserved', 'submitted');
