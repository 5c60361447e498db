-- Answers to paid requests that carried an x402 payment-identifier, so that a retry with the same
-- identifier and payment is answered again without a second charge, by any replica.
CREATE TABLE idempotent_responses (
	payment_id   TEXT        PRIMARY KEY,
	fingerprint  TEXT        NOT NULL,
	owner        TEXT        NOT NULL,
	state        TEXT        NOT NULL CHECK (state IN ('in_flight', 'kept', 'complete')),
	charge_ref   TEXT        NOT NULL DEFAULT '',
	status       INTEGER     NOT NULL DEFAULT 0,
	header       BYTEA       NOT NULL DEFAULT '\x',
	body         BYTEA       NOT NULL DEFAULT '\x',
	body_omitted BOOLEAN     NOT NULL DEFAULT FALSE,
	lease_until  TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);

-- The purge deletes in expiry order.
CREATE INDEX idempotent_responses_expiry ON idempotent_responses (expires_at);
