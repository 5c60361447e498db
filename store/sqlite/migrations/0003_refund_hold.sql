-- The part of a channel's balance a cooperative refund in flight is sending back: not spendable,
-- and left alone by chain syncs until the refund nonce moves past refund_hold_nonce.
ALTER TABLE channels ADD COLUMN refund_hold TEXT NOT NULL DEFAULT '0';
ALTER TABLE channels ADD COLUMN refund_hold_nonce TEXT NOT NULL DEFAULT '0';
-- A hold lapses at refund_hold_until (Unix microseconds), so a refund that never went out (the
-- process died between hold and transaction) cannot lock the funds for good.
ALTER TABLE channels ADD COLUMN refund_hold_until INTEGER NOT NULL DEFAULT 0;
