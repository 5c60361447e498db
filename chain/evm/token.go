package evm

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/payper/payper/contracts/testusdc"
)

// eip3009 packs and unpacks calls of the EIP-3009 token interface. Our test token implements the
// same functions as Circle's USDC, so one ABI serves both.
var eip3009 = testusdc.NewTestUSDC()

// call runs a read-only contract call against the latest block.
func (c *Client) call(ctx context.Context, to common.Address, data []byte) ([]byte, error) {
	return readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) ([]byte, error) {
		return eth.CallContract(ctx, callMsg(to, data), nil)
	})
}

func callMsg(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}

// BalanceOf returns owner's token balance.
func (c *Client) BalanceOf(ctx context.Context, token, owner common.Address) (*big.Int, error) {
	out, err := c.call(ctx, token, eip3009.PackBalanceOf(owner))
	if err != nil {
		return nil, fmt.Errorf("evm: balanceOf: %w", err)
	}
	return eip3009.UnpackBalanceOf(out)
}

// AuthorizationState reports whether an EIP-3009 nonce of authorizer is used or canceled.
func (c *Client) AuthorizationState(ctx context.Context, token, authorizer common.Address, nonce common.Hash) (bool, error) {
	out, err := c.call(ctx, token, eip3009.PackAuthorizationState(authorizer, nonce))
	if err != nil {
		return false, fmt.Errorf("evm: authorizationState: %w", err)
	}
	return eip3009.UnpackAuthorizationState(out)
}

// TokenName returns the token's ERC-20 name().
func (c *Client) TokenName(ctx context.Context, token common.Address) (string, error) {
	out, err := c.call(ctx, token, eip3009.PackName())
	if err != nil {
		return "", fmt.Errorf("evm: name: %w", err)
	}
	return eip3009.UnpackName(out)
}
