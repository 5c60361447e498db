package evm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/settle/account"
	"github.com/payper/payper/settle/txn"
)

// receiptReader is the part of the node WaitMined reads.
type receiptReader interface {
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
}

// headSource tells a waiter when to look at its receipt again, and how high the chain is.
type headSource interface {
	// Changed receives when a new head arrived, or after a quiet spell, to look anyway.
	Changed() <-chan struct{}
	// Head is the newest head seen, 0 before the first.
	Head() uint64
}

// WaitMined waits for the receipt of hash until it has the configured confirmations or ctx ends.
// The receipt is looked at when the wait begins and then at each new head of the chain, which
// the client follows once for all its waiters (see headFollower): over a subscription when an
// endpoint is a WebSocket one, otherwise by polling paced by the chain's block time. With more
// than one confirmation the receipt is read again once deep enough: if a reorg dropped the
// transaction or moved it to another block, the wait starts over from the new state. A receipt
// with status 0 returns txn.ErrFailed along with the receipt. Receipts are looked up on every
// endpoint.
//
// For a transaction this client's settler signed, the wait also keeps the account moving: it
// re-broadcasts what no node holds, fills nonce gaps and replaces a transaction not mined within
// ReplaceAfter (see account.Sender.Repair). The receipt returned is then that of whichever variant of the
// transaction was mined, which may not be hash; it is account.ErrNonceTaken when none can be.
func (c *Client) WaitMined(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	w := c.heads.watch()
	defer w.Close()
	if c.sender != nil {
		if fl := c.sender.FlightOf(hash); fl != nil {
			return c.waitFlight(ctx, w, fl)
		}
	}
	return c.waitMined(ctx, clientReader{c}, w, hash, nil)
}

// clientReader reads receipts and the head through the client's endpoints.
type clientReader struct{ c *Client }

func (r clientReader) TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	return r.c.lookupReceipt(ctx, hash)
}

// lookupReceipt asks the endpoints for hash's receipt until one has it (ethereum.NotFound when
// none does).
func (c *Client) lookupReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	var r *types.Receipt
	err := c.lookup(ctx, func(ctx context.Context, e *endpoint) error {
		var err error
		r, err = e.eth.TransactionReceipt(ctx, hash)
		return err
	})
	return r, err
}

// waitFlight waits for any variant of fl to be mined, looking at each new head, and repairs the
// account every RecheckEvery.
func (c *Client) waitFlight(ctx context.Context, heads headSource, fl *account.Flight) (*types.Receipt, error) {
	s := c.sender
	recheck := time.NewTimer(c.opts.RecheckEvery)
	defer recheck.Stop()
	for {
		unsure := false // a lookup failed: no receipt is not proof of none
		for _, h := range s.Variants(fl) {
			r, err := c.lookupReceipt(ctx, h)
			if err == nil {
				r, err = c.waitMined(ctx, clientReader{c}, heads, h, r)
				if r != nil && (err == nil || errors.Is(err, txn.ErrFailed)) {
					s.Land(fl, h)
				}
				return r, err
			}
			if !errors.Is(err, ethereum.NotFound) && ctx.Err() == nil {
				unsure = true
				c.log.Warn("receipt poll failed", "tx", h, "err", err)
			}
		}
		// The chain's nonce went past this one and no endpoint has a receipt of any variant, long
		// after: another transaction took the nonce.
		if !unsure && s.PassedFor(fl) > 2*c.opts.RecheckEvery {
			return nil, fmt.Errorf("%w: nonce %d of transaction %s", account.ErrNonceTaken, fl.Nonce(), s.Variants(fl)[0])
		}
		if err := c.nextLook(ctx, heads, recheck, fl); err != nil {
			return nil, err
		}
	}
}

// nextLook waits for a new head, repairing the account each time recheck fires meanwhile. A
// repair that finds the chain's nonce past fl's ends the wait at once: fl is mined, or its nonce
// taken.
func (c *Client) nextLook(ctx context.Context, heads headSource, recheck *time.Timer, fl *account.Flight) error {
	s := c.sender
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("evm: waiting for %s: %w", s.Variants(fl)[0], ctx.Err())
		case <-heads.Changed():
			return nil
		case <-recheck.C:
			if err := s.Repair(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("checking the settler's nonces failed", "err", err)
			}
			recheck.Reset(c.opts.RecheckEvery)
			// Anything a repair sent is mined in a later block: the next head brings the look.
			if s.PassedFor(fl) > 0 {
				return nil
			}
		}
	}
}

// sendAndWait sends a transaction from the settler account and waits for its receipt, returning
// the hash of the variant mined. A broadcast whose outcome is unknown is followed (re-sent while
// the wait repairs the account) for at most UnknownBroadcastWait before it is reported unknown.
func (c *Client) sendAndWait(ctx context.Context, to common.Address, data []byte) (common.Hash, error) {
	if c.sender == nil {
		return common.Hash{}, ErrReadOnly
	}
	tx, err := c.sender.Send(ctx, to, data, nil)
	if err != nil && !errors.Is(err, txn.ErrBroadcastUnknown) {
		return txHash(tx), err
	}
	wctx := ctx
	if err != nil {
		c.log.Warn("broadcast outcome unknown; re-sending and waiting for a receipt", "tx", tx.Hash(), "err", err)
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, c.opts.UnknownBroadcastWait)
		defer cancel()
	}
	r, werr := c.WaitMined(wctx, tx.Hash())
	switch {
	case r != nil && (werr == nil || errors.Is(werr, txn.ErrFailed)):
		return r.TxHash, werr
	case err != nil && ctx.Err() != nil:
		return tx.Hash(), fmt.Errorf("%w (then %w)", err, ctx.Err())
	case err != nil:
		return tx.Hash(), fmt.Errorf("%w; no receipt within %s", err, c.opts.UnknownBroadcastWait)
	}
	return tx.Hash(), werr
}

// waitMined waits for hash on chain, looking at each new head; first, when known, is its receipt
// already read.
func (c *Client) waitMined(ctx context.Context, chain receiptReader, heads headSource, hash common.Hash, first *types.Receipt) (*types.Receipt, error) {
	receipt := first // the latest receipt seen, nil while none is known
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
			final, next, err := c.settled(ctx, chain, heads, hash, receipt)
			if err != nil {
				c.log.Warn("confirmation poll failed", "tx", hash, "err", err)
			}
			if final {
				if receipt.Status != types.ReceiptStatusSuccessful {
					return receipt, fmt.Errorf("%w: %s", txn.ErrFailed, hash)
				}
				return receipt, nil
			}
			receipt = next
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("evm: waiting for %s: %w", hash, ctx.Err())
		case <-heads.Changed():
		}
	}
}

// settled reports whether r, hash's receipt, is final: enough blocks on top of it (going by the
// newest head seen), and still in the block it was first seen in. Otherwise next is the receipt
// to keep waiting on: r itself while it deepens or a read failed, the receipt in the
// transaction's new block after a reorg moved it, or nil after a reorg dropped it.
func (c *Client) settled(ctx context.Context, chain receiptReader, heads headSource, hash common.Hash, r *types.Receipt) (final bool, next *types.Receipt, err error) {
	if c.opts.Confirmations <= 1 {
		return true, r, nil
	}
	if heads.Head()+1 < r.BlockNumber.Uint64()+c.opts.Confirmations {
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
