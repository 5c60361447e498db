package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// rpcClient is the little JSON-RPC the exact mode needs to set a chain up and watch its clock:
// anvil's unlocked accounts send the set-up transactions, so nothing here signs one. (Only
// chain/evm dials a node for the gateway; this is test scaffolding outside it.)
type rpcClient struct {
	url  string
	http *http.Client
	id   atomic.Int64
}

func newRPCClient(url string) *rpcClient {
	return &rpcClient{url: url, http: &http.Client{Timeout: 30 * time.Second}}
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

// call runs method with params and decodes its result into result (unless nil).
func (c *rpcClient) call(ctx context.Context, result any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id.Add(1), "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("%s: status %d: %w", method, resp.StatusCode, err)
	}
	if out.Error != nil {
		return fmt.Errorf("%s: %w", method, out.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(out.Result, result); err != nil {
		return fmt.Errorf("%s result: %w", method, err)
	}
	return nil
}

// latestBlockTime is the timestamp of the chain's newest block.
func (c *rpcClient) latestBlockTime(ctx context.Context) (time.Time, error) {
	var block struct {
		Timestamp hexutil.Uint64 `json:"timestamp"`
	}
	if err := c.call(ctx, &block, "eth_getBlockByNumber", "latest", false); err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(block.Timestamp), 0), nil
}

// blockNumber is the number of the chain's newest block.
func (c *rpcClient) blockNumber(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	err := c.call(ctx, &n, "eth_blockNumber")
	return uint64(n), err
}

// chainID asks the node for its chain id.
func (c *rpcClient) chainID(ctx context.Context) (uint64, error) {
	var id hexutil.Uint64
	err := c.call(ctx, &id, "eth_chainId")
	return uint64(id), err
}

// clientVersion is the node's name and version.
func (c *rpcClient) clientVersion(ctx context.Context) (string, error) {
	var v string
	err := c.call(ctx, &v, "web3_clientVersion")
	return v, err
}

// sendFrom sends a transaction from one of the node's unlocked accounts (to nil creates a
// contract) and waits for its receipt, which must show success.
func (c *rpcClient) sendFrom(ctx context.Context, from common.Address, to *common.Address, data []byte) (*setupReceipt, error) {
	tx := map[string]any{"from": from, "data": hexutil.Bytes(data), "gas": hexutil.Uint64(5_000_000)}
	if to != nil {
		tx["to"] = *to
	}
	var hash common.Hash
	if err := c.call(ctx, &hash, "eth_sendTransaction", tx); err != nil {
		return nil, err
	}
	return c.waitReceipt(ctx, hash)
}

// setupReceipt is the part of a receipt the set-up reads.
type setupReceipt struct {
	Status          hexutil.Uint64  `json:"status"`
	ContractAddress *common.Address `json:"contractAddress"`
}

func (c *rpcClient) waitReceipt(ctx context.Context, hash common.Hash) (*setupReceipt, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		var r *setupReceipt
		if err := c.call(ctx, &r, "eth_getTransactionReceipt", hash); err != nil {
			return nil, err
		}
		if r != nil {
			if r.Status != 1 {
				return nil, fmt.Errorf("transaction %s reverted", hash)
			}
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("transaction %s not mined after a minute", hash)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// code is the contract code at addr.
func (c *rpcClient) code(ctx context.Context, addr common.Address) ([]byte, error) {
	var code hexutil.Bytes
	err := c.call(ctx, &code, "eth_getCode", addr, "latest")
	return code, err
}

// parsePort checks a decimal TCP port printed by a child.
func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return p, nil
}
