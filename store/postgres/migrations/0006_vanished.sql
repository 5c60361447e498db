-- A settled payment whose transaction left the chain (a reorg deeper than the confirmations, or a
-- reset chain) becomes 'vanished'.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
	CHECK (status IN ('reserved', 'submitted', 'settled', 'failed', 'released', 'vanished'));

-- The reconciler pages through recent settlements to check them against the chain again.
CREATE INDEX payments_recent_settled ON payments (updated_at, id)
	WHERE status IN ('settled', 'vanished');
