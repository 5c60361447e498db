package evm

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/backoff"
	"github.com/payper/payper/breaker"
	"github.com/payper/payper/settle/account"
)

// ErrChainIDMismatch means an RPC endpoint serves another chain than the configuration names.
var ErrChainIDMismatch = errors.New("evm: chain id mismatch")

// Options configure a Client.
type Options struct {
	// SettlerKey signs transactions; nil makes a read-only client.
	SettlerKey *ecdsa.PrivateKey
	// CallTimeout bounds each RPC call (default 10 s).
	CallTimeout time.Duration
	// Confirmations is how many blocks must contain a transaction, counting its own, before it is
	// final (default 1).
	Confirmations uint64
	// UnknownBroadcastWait bounds how long a send that waits for its receipt keeps looking for
	// (and re-broadcasting) a transaction whose broadcast got no usable answer (default 1 min).
	UnknownBroadcastWait time.Duration
	// RecheckEvery is how often, while a settler transaction waits to be mined, the account's
	// nonces are compared with the chain's: a lost transaction is re-broadcast, a nonce gap
	// filled, one waiting longer than ReplaceAfter replaced (default 2 s).
	RecheckEvery time.Duration
	// ReplaceAfter is how long a settler transaction may stay unmined before it is replaced by
	// one with the same nonce and fees raised by an eighth, as a node's pool requires (default
	// 20 s).
	ReplaceAfter time.Duration
	// MaxFeePerGas caps the fee per gas of any transaction and replacement, in wei; nil for no cap.
	// A transaction that needs more stays pending and is reported, never sent at any price.
	MaxFeePerGas *big.Int
	// MinGasBalance is the settler balance, in wei, below which a warning is logged; nil means
	// enough for account.LowBalanceSettlements settlements at current fees.
	MinGasBalance *big.Int
	// Breaker configures each endpoint's circuit breaker (Name, Logger and OnChange are set per
	// endpoint). Zero values take the breaker's defaults: open after 5 consecutive failures,
	// probe after 5 s.
	Breaker breaker.Options
	// Retry is the backoff of reads that failed on every endpoint (default: 3 attempts, 100 ms
	// then 200 ms apart, with jitter). Sends are never retried this way.
	Retry  backoff.Policy
	Now    func() time.Time
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.UnknownBroadcastWait <= 0 {
		o.UnknownBroadcastWait = time.Minute
	}
	if o.Confirmations == 0 {
		o.Confirmations = 1
	}
	if o.RecheckEvery <= 0 {
		o.RecheckEvery = 2 * time.Second
	}
	if o.ReplaceAfter <= 0 {
		o.ReplaceAfter = 20 * time.Second
	}
	if o.Retry.Attempts == 0 {
		o.Retry.Attempts = 3
	}
	if o.Retry.Max <= 0 {
		o.Retry.Max = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Client talks to one chain through one or more RPC endpoints.
type Client struct {
	eps         []*endpoint
	preferred   atomic.Int32 // index of the endpoint that answered last
	allOpen     atomic.Bool  // every endpoint's breaker is open
	noMulticall atomic.Bool  // the chain has no Multicall3: PaymentState batches instead
	chainID     *big.Int
	opts        Options
	log         *slog.Logger
	sender      *account.Sender // nil when read-only
	heads       *headFollower
}

// Dial connects to rawURL and checks that it serves chain wantChainID (nil accepts any chain).
func Dial(ctx context.Context, rawURL string, wantChainID *big.Int, opts Options) (*Client, error) {
	return DialEndpoints(ctx, []string{rawURL}, wantChainID, opts)
}

// DialEndpoints connects to several endpoints of one chain. Reads go to the endpoint that
// answered last and fail over to the others; sends go to it and, when its answer is unknown, to
// the others too; receipts are looked up on every endpoint. Each endpoint's chain id is checked
// now: one serving another chain is an error (with a nil wantChainID, the first one's chain is
// the reference). An endpoint that cannot be reached now is checked on first use, unless none
// can be reached.
func DialEndpoints(ctx context.Context, urls []string, wantChainID *big.Int, opts Options) (*Client, error) {
	if len(urls) == 0 {
		return nil, errors.New("evm: no RPC endpoint")
	}
	opts = opts.withDefaults()
	c := &Client{opts: opts, log: opts.Logger}
	c.heads = newHeadFollower(c)
	for i, raw := range urls {
		e := &endpoint{name: endpointName(i, raw), url: raw}
		rc, err := rpc.DialOptions(ctx, raw)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("evm: dial %s: %w", e.name, e.wrap(err))
		}
		e.rpc, e.eth = rc, ethclient.NewClient(rc)
		bo := opts.Breaker
		bo.Name, bo.Logger = "chain "+e.name, c.log
		bo.OnChange = func(_, to breaker.State) { c.breakerChanged(e, to) }
		e.br = breaker.New(bo)
		c.eps = append(c.eps, e)
	}
	if err := c.checkChainIDs(ctx, wantChainID); err != nil {
		c.Close()
		return nil, err
	}
	if opts.SettlerKey != nil {
		c.sender = account.NewSender(c, opts.SettlerKey, account.Options{RecheckEvery: opts.RecheckEvery, ReplaceAfter: opts.ReplaceAfter,
			MaxFeePerGas: opts.MaxFeePerGas, MinGasBalance: opts.MinGasBalance, Now: opts.Now, Logger: c.log})
	}
	return c, nil
}

// checkChainIDs reads every endpoint's chain id: any mismatch is an error, and so is reaching
// none of them.
func (c *Client) checkChainIDs(ctx context.Context, want *big.Int) error {
	var unreachable []error
	for _, e := range c.eps {
		cctx, cancel := c.callCtx(ctx)
		id, err := chainIDOf(cctx, e)
		cancel()
		if err != nil {
			unreachable = append(unreachable, e.wrap(err))
			continue
		}
		if want == nil {
			want = id
		}
		if id.Cmp(want) != 0 {
			return fmt.Errorf("%w: %s serves %s, configuration says %s", ErrChainIDMismatch, e.name, id, want)
		}
		e.verified.Store(true)
	}
	if len(unreachable) == len(c.eps) {
		return fmt.Errorf("evm: read chain id: %w", errors.Join(unreachable...))
	}
	for _, err := range unreachable {
		c.log.Warn("rpc endpoint unreachable at start; its chain id is checked on first use", "err", err)
	}
	c.chainID = want
	return nil
}

// ChainID is the chain the endpoints serve.
func (c *Client) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// Close stops following the chain's head and closes the connections.
func (c *Client) Close() {
	c.heads.close()
	for _, e := range c.eps {
		if e.eth != nil {
			e.eth.Close()
		}
	}
}

func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CallTimeout)
}

func (c *Client) now() time.Time { return c.opts.Now() }

// retryReads retries op with backoff while it fails with every endpoint having failed
// transiently; refusing breakers and answers are returned at once.
func retryReads(ctx context.Context, p backoff.Policy, op func(ctx context.Context) error) error {
	return backoff.Retry(ctx, p, func(err error) bool {
		var u *unavailableError
		return errors.As(err, &u) && u.open == nil
	}, op)
}

// HasCode reports whether addr holds contract code.
func (c *Client) HasCode(ctx context.Context, addr common.Address) (bool, error) {
	code, err := readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) ([]byte, error) {
		return eth.CodeAt(ctx, addr, nil)
	})
	return len(code) > 0, err
}

// BlockNumber returns the latest block number.
func (c *Client) BlockNumber(ctx context.Context) (uint64, error) {
	return readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) (uint64, error) {
		return eth.BlockNumber(ctx)
	})
}

// LatestBlockTime returns the latest block's timestamp: the chain's own clock, which the escrow
// judges withdraw delays by.
func (c *Client) LatestBlockTime(ctx context.Context) (time.Time, error) {
	t, err := readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) (uint64, error) {
		head, err := eth.HeaderByNumber(ctx, nil)
		if err != nil {
			return 0, err
		}
		return head.Time, nil
	})
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(t), 0), nil
}
