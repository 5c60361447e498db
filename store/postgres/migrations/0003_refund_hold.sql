-- The part of a channel's balance a cooperative refund in flight is sending back: not spendable,
-- and left alone by chain syncs until the refund nonce moves past refund_hold_nonce.
ALTER TABLE channels ADD COLUMN refund_hold NUMERIC(78,0) NOT NULL DEFAULT 0 CHECK (refund_hold >= 0);
ALTER TABLE channels ADD COLUMN refund_hold_nonce NUMERIC(78,0) NOT NULL DEFAULT 0;
-- A hold lapses at refund_hold_until, so a refund that never went out (the process died between
-- hold and transaction) cannot lock the funds for good.
ALTER TABLE channels ADD COLUMN refund_hold_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch';
