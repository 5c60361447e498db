package evm

import (
	"context"
	"errors"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// TxStatus is what a node knows of a transaction at one moment.
type TxStatus struct {
	// Receipt is set when the transaction is mined in a block at or below the node's head.
	Receipt *types.Receipt
	// Pending means the node holds the transaction in its pool, not mined.
	Pending bool
}

// LookupTx reports what the nodes know of hash now, without waiting: mined (with its receipt,
// whatever its status), waiting in the pool, or neither (the zero TxStatus). A receipt in a block
// above the node's head counts as not mined: a node whose chain was rewound may still serve the
// receipts of blocks it dropped.
func (c *Client) LookupTx(ctx context.Context, hash common.Hash) (TxStatus, error) {
	r, err := c.lookupReceipt(ctx, hash)
	switch {
	case err == nil:
		head, err := c.BlockNumber(ctx)
		if err != nil {
			return TxStatus{}, err
		}
		if r.BlockNumber.Uint64() <= head {
			return TxStatus{Receipt: r}, nil
		}
	case !errors.Is(err, ethereum.NotFound):
		return TxStatus{}, err
	}
	var pending bool
	err = c.lookup(ctx, func(ctx context.Context, e *endpoint) error {
		var err error
		_, pending, err = e.eth.TransactionByHash(ctx, hash)
		return err
	})
	switch {
	case errors.Is(err, ethereum.NotFound):
		return TxStatus{}, nil
	case err != nil:
		return TxStatus{}, err
	}
	return TxStatus{Pending: pending}, nil
}
