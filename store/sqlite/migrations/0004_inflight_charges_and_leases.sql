-- Channel charges whose request is still being served, kept on the channel's own row so that a
-- charge and its in-flight mark are one row update, and every read of the channel sees both at
-- once. Each entry is ";<id>:<amount>:<expires, Unix microseconds>". Such charges count in
-- charged, so the next voucher builds on them, but they are not final: no claim or refund may
-- take them. An entry is removed when its request is answered (the charge is final) or given
-- back (its amount leaves charged); one past its expiry belongs to a request that can no longer
-- be answered, its process having died, and is given back.
ALTER TABLE channels ADD COLUMN inflight TEXT NOT NULL DEFAULT '';

-- A lease lets one replica at a time run a job (claim rounds): holder has it until until_at
-- (Unix microseconds), and anyone may take it once that has passed, so a replica that died
-- holding it blocks the job only until then.
CREATE TABLE leases (
	name     TEXT    PRIMARY KEY,
	holder   TEXT    NOT NULL,
	until_at INTEGER NOT NULL
);
