package evm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
)

// rebroadcastEvery spaces the re-sends of a transaction whose broadcast outcome is unknown.
const rebroadcastEvery = 2 * time.Second

// awaitUnknown follows a signed transaction whose broadcast got no usable answer (cause wraps
// ErrBroadcastUnknown). A transport failure or a flaky endpoint usually means the node has it,
// or will once asked again: the same signed bytes are sent again now and then (a node that holds
// them answers "already known", one that mined them "nonce too low"; either is harmless, since
// the hash cannot change) while the receipt is polled, for at most UnknownBroadcastWait. A
// receipt ends the wait like any send's (nil, or ErrTxFailed); without one the cause is
// returned, and the caller still treats the transaction as possibly pending.
func (c *Client) awaitUnknown(ctx context.Context, tx *types.Transaction, cause error) error {
	hash := tx.Hash()
	c.log.Warn("broadcast outcome unknown; re-sending and waiting for a receipt", "tx", hash, "err", cause)
	wctx, cancel := context.WithTimeout(ctx, c.opts.UnknownBroadcastWait)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			cctx, ccancel := c.callCtx(wctx)
			err := c.eth.SendTransaction(cctx, tx)
			ccancel()
			if err != nil {
				c.log.Debug("re-broadcast", "tx", hash, "err", err)
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(rebroadcastEvery):
			}
		}
	}()
	_, err := c.WaitMined(wctx, hash)
	cancel()
	<-stopped
	switch {
	case err == nil || errors.Is(err, ErrTxFailed):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("%w (then %w)", cause, ctx.Err())
	default:
		return fmt.Errorf("%w; no receipt within %s", cause, c.opts.UnknownBroadcastWait)
	}
}
