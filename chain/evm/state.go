package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/settle/txn"
)

// multicall packs and unpacks calls of Multicall3, deployed at multicall3.Address on virtually
// every EVM chain and in the dev chain's genesis.
var multicall = multicall3.NewMulticall3()

// PaymentState reads what verifying an EIP-3009 payment needs from the chain, in one call:
// whether authorizer's nonce is used or canceled on token, and authorizer's token balance. Both
// are read in the same block, by one eth_call of Multicall3's tryAggregate (as the x402 reference
// facilitator reads them). On a chain without Multicall3 the two reads go as one JSON-RPC batch,
// from then on. A read the token reverts is a *txn.RevertError.
func (c *Client) PaymentState(ctx context.Context, token, authorizer common.Address, nonce common.Hash) (used bool, balance *big.Int, err error) {
	calls := [2][]byte{eip3009.PackAuthorizationState(authorizer, nonce), eip3009.PackBalanceOf(authorizer)}
	var outs [2][]byte
	done := false
	if !c.noMulticall.Load() {
		outs, done, err = c.aggregate(ctx, token, calls)
		if err != nil {
			return false, nil, fmt.Errorf("evm: payment state: %w", err)
		}
	}
	if !done {
		if outs, err = c.batchCalls(ctx, token, calls); err != nil {
			return false, nil, fmt.Errorf("evm: payment state: %w", err)
		}
	}
	if used, err = eip3009.UnpackAuthorizationState(outs[0]); err != nil {
		return false, nil, fmt.Errorf("evm: authorizationState: %w", err)
	}
	if balance, err = eip3009.UnpackBalanceOf(outs[1]); err != nil {
		return false, nil, fmt.Errorf("evm: balanceOf: %w", err)
	}
	return used, balance, nil
}

// aggregate runs calls on target through Multicall3's tryAggregate, letting each one fail on its
// own. done is false when the chain has no Multicall3 (its address answers nothing).
func (c *Client) aggregate(ctx context.Context, target common.Address, calls [2][]byte) (outs [2][]byte, done bool, err error) {
	packed := make([]multicall3.Multicall3Call, len(calls))
	for i, data := range calls {
		packed[i] = multicall3.Multicall3Call{Target: target, CallData: data}
	}
	out, err := c.call(ctx, multicall3.Address, multicall.PackTryAggregate(false, packed))
	if err != nil {
		return outs, false, err
	}
	if len(out) == 0 {
		if !c.noMulticall.Swap(true) {
			c.log.Info("no Multicall3 on this chain; verification reads go as a JSON-RPC batch", "address", multicall3.Address)
		}
		return outs, false, nil
	}
	results, err := multicall.UnpackTryAggregate(out)
	if err != nil {
		return outs, false, fmt.Errorf("multicall answer: %w", err)
	}
	if len(results) != len(calls) {
		return outs, false, fmt.Errorf("multicall answered %d results for %d calls", len(results), len(calls))
	}
	for i, r := range results {
		if !r.Success {
			reason, _ := abi.UnpackRevert(r.ReturnData)
			return outs, false, &txn.RevertError{Reason: reason, Err: errors.New("call reverted in multicall")}
		}
		outs[i] = r.ReturnData
	}
	return outs, true, nil
}

// batchCalls runs calls on target as eth_calls against the latest block, in one JSON-RPC batch on
// one endpoint.
func (c *Client) batchCalls(ctx context.Context, target common.Address, calls [2][]byte) (outs [2][]byte, err error) {
	err = c.read(ctx, func(ctx context.Context, e *endpoint) error {
		var results [2]hexutil.Bytes
		batch := make([]rpc.BatchElem, len(calls))
		for i, data := range calls {
			arg := map[string]any{"to": target, "data": hexutil.Bytes(data)}
			batch[i] = rpc.BatchElem{Method: "eth_call", Args: []any{arg, "latest"}, Result: &results[i]}
		}
		if err := e.rpc.BatchCallContext(ctx, batch); err != nil {
			return err
		}
		for i, b := range batch {
			if b.Error != nil {
				return b.Error
			}
			outs[i] = results[i]
		}
		return nil
	})
	if rev := asRevertOrNil(err); rev != nil {
		return outs, rev
	}
	return outs, err
}

// asRevertOrNil is asRevert for a possibly nil error.
func asRevertOrNil(err error) *txn.RevertError {
	if err == nil {
		return nil
	}
	return asRevert(err)
}
