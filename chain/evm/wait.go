package evm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// receiptReader is the part of the node WaitMined reads.
type receiptReader interface {
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	BlockNumber(ctx context.Context) (uint64, error)
}

// WaitMined polls for the receipt of hash until it has the configured confirmations or ctx ends.
// With more than one confirmation the receipt is read again once deep enough: if a reorg dropped
// the transaction or moved it to another block, the wait starts over from the new state. A
// receipt with status 0 returns ErrTxFailed along with the receipt.
func (c *Client) WaitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	return c.waitMined(ctx, c.eth, hash)
}

func (c *Client) waitMined(ctx context.Context, chain receiptReader, hash common.Hash) (*types.Receipt, error) {
	delay := c.opts.PollInterval
	var receipt *types.Receipt // the latest receipt seen, nil while none is known
	for {
		if receipt == nil {
			r, err := c.receipt(ctx, chain, hash)
			switch {
			case err == nil:
				receipt = r
			case !errors.Is(err, ethereum.NotFound):
				c.log.Warn("receipt poll failed", "tx", hash, "err", err)
			}
		}
		if receipt != nil {
			final, next, err := c.settled(ctx, chain, hash, receipt)
			if err != nil {
				c.log.Warn("confirmation poll failed", "tx", hash, "err", err)
			}
			if final {
				if receipt.Status != types.ReceiptStatusSuccessful {
					return receipt, fmt.Errorf("%w: %s", ErrTxFailed, hash)
				}
				return receipt, nil
			}
			receipt = next
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("evm: waiting for %s: %w", hash, ctx.Err())
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

// settled reports whether r, hash's receipt, is final: enough blocks on top of it, and still in
// the block it was first seen in. Otherwise next is the receipt to keep waiting on: r itself
// while it deepens or a read failed, the receipt in the transaction's new block after a reorg
// moved it, or nil after a reorg dropped it.
func (c *Client) settled(ctx context.Context, chain receiptReader, hash common.Hash, r *types.Receipt) (final bool, next *types.Receipt, err error) {
	if c.opts.Confirmations <= 1 {
		return true, r, nil
	}
	cctx, cancel := c.callCtx(ctx)
	head, err := chain.BlockNumber(cctx)
	cancel()
	if err != nil {
		return false, r, err
	}
	if head+1 < r.BlockNumber.Uint64()+c.opts.Confirmations {
		return false, r, nil
	}
	again, err := c.receipt(ctx, chain, hash)
	switch {
	case err == nil && again.BlockHash == r.BlockHash:
		return true, r, nil
	case err == nil:
		c.log.Warn("transaction moved by a reorg; counting confirmations again", "tx", hash,
			"was_block", r.BlockNumber, "now_block", again.BlockNumber)
		return false, again, nil
	case errors.Is(err, ethereum.NotFound):
		c.log.Warn("transaction dropped by a reorg; waiting for it to be mined again", "tx", hash, "was_block", r.BlockNumber)
		return false, nil, nil
	default:
		return false, r, err
	}
}

func (c *Client) receipt(ctx context.Context, chain receiptReader, hash common.Hash) (*types.Receipt, error) {
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	return chain.TransactionReceipt(cctx, hash)
}
