package evm

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// ErrChainIDMismatch means the RPC endpoint serves another chain than the configuration names.
var ErrChainIDMismatch = errors.New("evm: chain id mismatch")

// Options configure a Client.
type Options struct {
	// SettlerKey signs transactions; nil makes a read-only client.
	SettlerKey *ecdsa.PrivateKey
	// CallTimeout bounds each RPC call (default 10 s).
	CallTimeout time.Duration
	// PollInterval is the first receipt poll delay; it doubles up to 1 s (default 50 ms).
	PollInterval time.Duration
	// Confirmations is how many blocks must contain a transaction, counting its own, before it is
	// final (default 1).
	Confirmations uint64
	// UnknownBroadcastWait bounds how long a send that waits for its receipt keeps looking for
	// (and re-broadcasting) a transaction whose broadcast got no usable answer (default 1 min).
	UnknownBroadcastWait time.Duration
	Logger               *slog.Logger
}

// Client talks to one chain.
type Client struct {
	eth     *ethclient.Client
	chainID *big.Int
	opts    Options
	log     *slog.Logger
	sender  *sender // nil when read-only
}

// Dial connects to rawURL and checks that it serves chain wantChainID.
func Dial(ctx context.Context, rawURL string, wantChainID *big.Int, opts Options) (*Client, error) {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 10 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	if opts.UnknownBroadcastWait <= 0 {
		opts.UnknownBroadcastWait = time.Minute
	}
	if opts.Confirmations == 0 {
		opts.Confirmations = 1
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc, err := rpc.DialOptions(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("evm: dial: %w", err)
	}
	c := &Client{eth: ethclient.NewClient(rc), opts: opts, log: log}
	cctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
	defer cancel()
	id, err := c.eth.ChainID(cctx)
	if err != nil {
		c.eth.Close()
		return nil, fmt.Errorf("evm: read chain id: %w", err)
	}
	if wantChainID != nil && id.Cmp(wantChainID) != 0 {
		c.eth.Close()
		return nil, fmt.Errorf("%w: endpoint serves %s, configuration says %s", ErrChainIDMismatch, id, wantChainID)
	}
	c.chainID = id
	if opts.SettlerKey != nil {
		c.sender = newSender(c, opts.SettlerKey)
	}
	return c, nil
}

// ChainID is the chain the endpoint serves.
func (c *Client) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// SettlerAddress is the address that pays gas for settlements (zero when read-only).
func (c *Client) SettlerAddress() common.Address {
	if c.sender == nil {
		return common.Address{}
	}
	return c.sender.from
}

// Close closes the connection.
func (c *Client) Close() { c.eth.Close() }

func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CallTimeout)
}

// HasCode reports whether addr holds contract code.
func (c *Client) HasCode(ctx context.Context, addr common.Address) (bool, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	code, err := c.eth.CodeAt(ctx, addr, nil)
	return len(code) > 0, err
}

// BlockNumber returns the latest block number.
func (c *Client) BlockNumber(ctx context.Context) (uint64, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	return c.eth.BlockNumber(ctx)
}

// LatestBlockTime returns the latest block's timestamp: the chain's own clock, which the escrow
// judges withdraw delays by.
func (c *Client) LatestBlockTime(ctx context.Context) (time.Time, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	head, err := c.eth.HeaderByNumber(ctx, nil)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(head.Time), 0), nil
}
