package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/settle/account"
	"github.com/payper/payper/settle/txn"
)

// The settler account's nonces, fees and gas balance are the settlement engine's
// (settle/account.Sender); the Client is the engine's node (account.Node) and answers for the
// account's sends and for the waits on its transactions.

// ErrReadOnly means the client has no settler key.
var ErrReadOnly = errors.New("evm: client has no settler key")

// Send signs a transaction calling to with data from the settler account, hands its hash to
// onSigned (a write-ahead record; if it fails nothing is broadcast), then broadcasts it. A call
// that would revert is refused before signing with a *txn.RevertError (wrapping txn.ErrNotSent).
// If the transaction is later replaced (same nonce, higher fees), onSigned is called again with
// the replacement's hash before it is broadcast, so it must stay usable after Send returns;
// WaitMined on any of the hashes returns whichever is mined.
func (c *Client) Send(ctx context.Context, to common.Address, data []byte, onSigned func(common.Hash) error) (common.Hash, error) {
	if c.sender == nil {
		return common.Hash{}, ErrReadOnly
	}
	tx, err := c.sender.Send(ctx, to, data, onSigned)
	return txHash(tx), err
}

// txHash is tx's hash, zero for no transaction.
func txHash(tx *types.Transaction) common.Hash {
	if tx == nil {
		return common.Hash{}
	}
	return tx.Hash()
}

// Nonces implements account.Node: the account's latest and pending nonces, read on one endpoint
// in one batch.
func (c *Client) Nonces(ctx context.Context, addr common.Address) (latest, pending uint64, err error) {
	err = c.read(ctx, func(ctx context.Context, e *endpoint) error {
		var l, p hexutil.Uint64
		batch := []rpc.BatchElem{
			{Method: "eth_getTransactionCount", Args: []any{addr, "latest"}, Result: &l},
			{Method: "eth_getTransactionCount", Args: []any{addr, "pending"}, Result: &p},
		}
		if err := e.rpc.BatchCallContext(ctx, batch); err != nil {
			return err
		}
		for _, b := range batch {
			if b.Error != nil {
				return b.Error
			}
		}
		latest, pending = uint64(l), max(uint64(p), uint64(l))
		return nil
	})
	if err != nil {
		err = fmt.Errorf("settler nonces: %w", err)
	}
	return latest, pending, err
}

// SuggestFees implements account.Node: the suggested tip, and a fee cap of twice the latest base
// fee plus the tip, read on one endpoint.
func (c *Client) SuggestFees(ctx context.Context) (tip, feeCap *big.Int, err error) {
	err = c.read(ctx, func(ctx context.Context, e *endpoint) error {
		// One round trip for both: a settlement's send is on a paying request's path.
		var t hexutil.Big
		var head *types.Header
		batch := []rpc.BatchElem{
			{Method: "eth_maxPriorityFeePerGas", Result: &t},
			{Method: "eth_getBlockByNumber", Args: []any{"latest", false}, Result: &head},
		}
		if err := e.rpc.BatchCallContext(ctx, batch); err != nil {
			return err
		}
		for _, b := range batch {
			if b.Error != nil {
				return b.Error
			}
		}
		if head == nil {
			return ethereum.NotFound
		}
		base := head.BaseFee
		if base == nil {
			base = new(big.Int)
		}
		tip = (*big.Int)(&t)
		feeCap = new(big.Int).Add(tip, new(big.Int).Lsh(base, 1))
		return nil
	})
	return tip, feeCap, err
}

// BalanceAt implements account.Node: addr's ETH balance in wei.
func (c *Client) BalanceAt(ctx context.Context, addr common.Address) (*big.Int, error) {
	return readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) (*big.Int, error) {
		return eth.BalanceAt(ctx, addr, nil)
	})
}

// EstimateGas implements account.Node; a call the EVM reverts is a *txn.RevertError.
func (c *Client) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	gas, err := readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) (uint64, error) {
		return eth.EstimateGas(ctx, msg)
	})
	if err != nil {
		if rev := asRevert(err); rev != nil {
			return 0, rev
		}
	}
	return gas, err
}

// asRevert extracts a revert from a JSON-RPC error, or returns nil.
func asRevert(err error) *txn.RevertError {
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			if data, derr := hexutil.Decode(s); derr == nil {
				reason, _ := abi.UnpackRevert(data)
				return &txn.RevertError{Reason: reason, Err: err}
			}
		}
	}
	if strings.Contains(err.Error(), "execution reverted") {
		return &txn.RevertError{Err: err}
	}
	return nil
}

// SettlerAddress is the address that pays gas for settlements (zero when read-only).
func (c *Client) SettlerAddress() common.Address {
	if c.sender == nil {
		return common.Address{}
	}
	return c.sender.Address()
}

// SettlerBalance returns the settler account's ETH balance in wei.
func (c *Client) SettlerBalance(ctx context.Context) (*big.Int, error) {
	if c.sender == nil {
		return nil, ErrReadOnly
	}
	return c.BalanceAt(ctx, c.sender.Address())
}

// CheckSettlerFunds reads the settler's balance and today's fees, logs when the balance crosses
// the low-balance threshold or falls below one settlement (once per crossing), and returns an
// *account.FundingError while the balance cannot pay for one settlement.
func (c *Client) CheckSettlerFunds(ctx context.Context) error {
	if c.sender == nil {
		return ErrReadOnly
	}
	return c.sender.CheckFunds(ctx)
}

// RequireSettlerFunds is the start-up check: an error when the settler holds no ETH at all,
// saying how to fund it. A balance that is merely low is logged.
func (c *Client) RequireSettlerFunds(ctx context.Context) error {
	err := c.CheckSettlerFunds(ctx)
	var short *account.FundingError
	if errors.As(err, &short) && short.Balance.Sign() > 0 {
		return nil // logged; exact payments get 503 until it is funded
	}
	return err
}

// SettlerFundsError is the *account.FundingError of the last balance check or send that found
// the settler unable to pay for a settlement, or nil.
func (c *Client) SettlerFundsError() error {
	if c.sender == nil {
		return nil
	}
	return c.sender.FundsError()
}

// WatchSettlerFunds checks the settler's balance every interval until ctx ends, every 2 s while
// it cannot pay for a settlement, so that payments resume soon after it is funded.
func (c *Client) WatchSettlerFunds(ctx context.Context, every time.Duration) {
	if c.sender == nil {
		return
	}
	for {
		wait := every
		err := c.CheckSettlerFunds(ctx)
		if errors.Is(err, txn.ErrSettlerUnfunded) {
			wait = min(every, 2*time.Second)
		} else if err != nil && ctx.Err() == nil {
			c.log.Warn("checking the settler's gas balance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
