-- Batch-settlement escrow channels. NUMERIC(78,0) holds every uint256.
CREATE TABLE channels (
	id                    TEXT          PRIMARY KEY,
	network               TEXT          NOT NULL,
	payer                 TEXT          NOT NULL,
	payer_authorizer      TEXT          NOT NULL,
	receiver              TEXT          NOT NULL,
	receiver_authorizer   TEXT          NOT NULL,
	token                 TEXT          NOT NULL,
	withdraw_delay        BIGINT        NOT NULL,
	salt                  TEXT          NOT NULL,
	charged               NUMERIC(78,0) NOT NULL CHECK (charged >= 0),
	signed_max            NUMERIC(78,0) NOT NULL CHECK (signed_max >= 0),
	signature             TEXT          NOT NULL,
	claimed               NUMERIC(78,0) NOT NULL CHECK (claimed >= 0),
	balance               NUMERIC(78,0) NOT NULL CHECK (balance >= 0),
	total_claimed         NUMERIC(78,0) NOT NULL CHECK (total_claimed >= 0),
	pending_withdrawal    NUMERIC(78,0) NOT NULL CHECK (pending_withdrawal >= 0),
	withdraw_requested_at BIGINT        NOT NULL,
	refund_nonce          NUMERIC(78,0) NOT NULL CHECK (refund_nonce >= 0),
	chain_version         BIGINT        NOT NULL,
	synced_block          BIGINT        NOT NULL,
	synced_at             TIMESTAMPTZ   NOT NULL,
	created_at            TIMESTAMPTZ   NOT NULL,
	updated_at            TIMESTAMPTZ   NOT NULL
);

CREATE INDEX channels_payer ON channels (payer, updated_at);
CREATE INDEX channels_receiver ON channels (receiver, updated_at);
