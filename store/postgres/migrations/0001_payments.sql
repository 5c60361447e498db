-- Exact-scheme payments. NUMERIC(78,0) holds every uint256.
CREATE TABLE payments (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	scheme       TEXT          NOT NULL,
	network      TEXT          NOT NULL,
	asset        TEXT          NOT NULL,
	payer        TEXT          NOT NULL,
	pay_to       TEXT          NOT NULL,
	amount       NUMERIC(78,0) NOT NULL CHECK (amount >= 0),
	nonce        TEXT          NOT NULL,
	valid_before TIMESTAMPTZ   NOT NULL,
	method       TEXT          NOT NULL,
	route        TEXT          NOT NULL,
	resource     TEXT          NOT NULL,
	status       TEXT          NOT NULL
		CHECK (status IN ('reserved', 'submitted', 'settled', 'failed', 'released')),
	tx_hash      TEXT          NOT NULL DEFAULT '',
	error_reason TEXT          NOT NULL DEFAULT '',
	created_at   TIMESTAMPTZ   NOT NULL,
	updated_at   TIMESTAMPTZ   NOT NULL
);

-- One live payment per authorization: this index is the replay guard.
CREATE UNIQUE INDEX payments_live_key ON payments (network, asset, payer, nonce)
	WHERE status <> 'released';

CREATE INDEX payments_payer ON payments (payer, id);

CREATE INDEX payments_unfinished ON payments (id)
	WHERE status IN ('reserved', 'submitted');
