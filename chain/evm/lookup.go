package evm

import (
	"context"
	"errors"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/settle/txn"
)

// LookupTx reports what the nodes know of hash now, without waiting: mined (with its receipt,
// whatever its status), waiting in the pool, or neither (the zero txn.Status). A receipt in a block
// above the node's head counts as not mined: a node whose chain was rewound may still serve the
// receipts of blocks it dropped.
func (c *Client) LookupTx(ctx context.Context, hash common.Hash) (txn.Status, error) {
	r, err := c.lookupReceipt(ctx, hash)
	switch {
	case err == nil:
		head, err := c.BlockNumber(ctx)
		if err != nil {
			return txn.Status{}, err
		}
		if r.BlockNumber.Uint64() <= head {
			return txn.Status{Receipt: r}, nil
		}
	case !errors.Is(err, ethereum.NotFound):
		return txn.Status{}, err
	}
	var pending bool
	err = c.lookup(ctx, func(ctx context.Context, e *endpoint) error {
		var err error
		_, pending, err = e.eth.TransactionByHash(ctx, hash)
		return err
	})
	switch {
	case errors.Is(err, ethereum.NotFound):
		return txn.Status{}, nil
	case err != nil:
		return txn.Status{}, err
	}
	return txn.Status{Pending: pending}, nil
}
