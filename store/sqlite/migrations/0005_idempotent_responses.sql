-- Answers to paid requests that carried an x402 payment-identifier, so that a retry with the same
-- identifier and payment is answered again without a second charge, by any process. Times are
-- Unix microseconds in UTC.
CREATE TABLE idempotent_responses (
	payment_id   TEXT    PRIMARY KEY,
	fingerprint  TEXT    NOT NULL,
	owner        TEXT    NOT NULL,
	state        TEXT    NOT NULL CHECK (state IN ('in_flight', 'kept', 'complete')),
	charge_ref   TEXT    NOT NULL DEFAULT '',
	status       INTEGER NOT NULL DEFAULT 0,
	header       BLOB    NOT NULL DEFAULT x'',
	body         BLOB    NOT NULL DEFAULT x'',
	body_omitted INTEGER NOT NULL DEFAULT 0 CHECK (body_omitted IN (0, 1)),
	lease_until  INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);

-- The purge deletes in expiry order.
CREATE INDEX idempotent_responses_expiry ON idempotent_responses (expires_at);
