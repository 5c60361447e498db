-- The async settlement flow: a payment reserved in it (async = 1) is served at once and settled
-- in the background. Its request's answer marks it queued (queued = 1), the worker's cue; a
-- reserved payment that is not queued was never answered and is released on recovery, a queued
-- one never is. Its scheme payload (the signed authorization, JSON) is kept so that any replica
-- can send it later.
ALTER TABLE payments ADD COLUMN async   SMALLINT NOT NULL DEFAULT 0 CHECK (async IN (0, 1));
ALTER TABLE payments ADD COLUMN queued  SMALLINT NOT NULL DEFAULT 0 CHECK (queued IN (0, 1));
ALTER TABLE payments ADD COLUMN payload TEXT     NOT NULL DEFAULT '';

-- The worker reads the queue oldest first.
CREATE INDEX payments_queue ON payments (id) WHERE status = 'reserved' AND queued = 1;

-- What async payments have served and not yet settled, per payer, and in total on the row whose
-- payer is ''. A reservation adds its amount, the payment leaving reserved or submitted takes
-- it off, in the same transaction, under the rows' locks. blocked_at is when an async payment
-- of the payer last failed.
CREATE TABLE async_exposure (
	payer      TEXT          PRIMARY KEY,
	unsettled  NUMERIC(78,0) NOT NULL DEFAULT 0 CHECK (unsettled >= 0),
	blocked_at TIMESTAMPTZ   NOT NULL DEFAULT '1970-01-01T00:00:00Z'
);
INSERT INTO async_exposure (payer) VALUES ('');
