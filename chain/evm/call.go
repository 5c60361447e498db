package evm

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
)

// Call runs a read-only call of contract to with data against the latest block and returns what
// it returned: how a transaction would fare before it is sent (a Multicall3 batch, say).
func (c *Client) Call(ctx context.Context, to common.Address, data []byte) ([]byte, error) {
	return c.call(ctx, to, data)
}
