-- Batch-settlement escrow channels. Amounts are decimal TEXT (uint256 and
-- uint128 values); times are Unix microseconds in UTC.
CREATE TABLE channels (
	id                    TEXT    PRIMARY KEY,
	network               TEXT    NOT NULL,
	payer                 TEXT    NOT NULL,
	payer_authorizer      TEXT    NOT NULL,
	receiver              TEXT    NOT NULL,
	receiver_authorizer   TEXT    NOT NULL,
	token                 TEXT    NOT NULL,
	withdraw_delay        INTEGER NOT NULL,
	salt                  TEXT    NOT NULL,
	charged               TEXT    NOT NULL,
	signed_max            TEXT    NOT NULL,
	signature             TEXT    NOT NULL,
	claimed               TEXT    NOT NULL,
	balance               TEXT    NOT NULL,
	total_claimed         TEXT    NOT NULL,
	pending_withdrawal    TEXT    NOT NULL,
	withdraw_requested_at INTEGER NOT NULL,
	refund_nonce          TEXT    NOT NULL,
	chain_version         INTEGER NOT NULL,
	synced_block          INTEGER NOT NULL,
	synced_at             INTEGER NOT NULL,
	created_at            INTEGER NOT NULL,
	updated_at            INTEGER NOT NULL
);

CREATE INDEX channels_payer ON channels (payer, updated_at);
CREATE INDEX channels_receiver ON channels (receiver, updated_at);
