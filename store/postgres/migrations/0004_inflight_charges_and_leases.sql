-- Channel charges whose request is still being served. They count in channels.charged, so the
-- next voucher builds on them, but they are not final: no claim or refund may take them. A row
-- is deleted when its request is answered (the charge is final) or given back (its amount leaves
-- charged). A row past expires_at belongs to a request that can no longer be answered, its
-- process having died: it is given back.
CREATE TABLE inflight_charges (
	id         TEXT          PRIMARY KEY,
	channel_id TEXT          NOT NULL REFERENCES channels (id),
	amount     NUMERIC(78,0) NOT NULL CHECK (amount > 0),
	expires_at TIMESTAMPTZ   NOT NULL,
	created_at TIMESTAMPTZ   NOT NULL
);

CREATE INDEX inflight_charges_channel ON inflight_charges (channel_id);
CREATE INDEX inflight_charges_expires ON inflight_charges (expires_at);

-- A lease lets one replica at a time run a job (claim rounds): holder has it until until_at, and
-- anyone may take it once that has passed, so a replica that died holding it blocks the job only
-- until then.
CREATE TABLE leases (
	name     TEXT        PRIMARY KEY,
	holder   TEXT        NOT NULL,
	until_at TIMESTAMPTZ NOT NULL
);
