package evm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/breaker"
)

// ErrUnavailable means no RPC endpoint answered: each one failed (transport error, HTTP error,
// timeout, overload) or its circuit breaker refuses calls for now. When the breakers refuse, the
// error also carries the time until one of them lets a probe through (RetryAfter).
var ErrUnavailable = errors.New("evm: chain rpc unavailable")

// unavailableError is ErrUnavailable with its cause.
type unavailableError struct {
	cause error
	open  *breaker.OpenError // set when every endpoint's breaker refused: fail fast, no retry
}

func (e *unavailableError) Error() string { return "evm: chain rpc unavailable: " + e.cause.Error() }
func (e *unavailableError) Unwrap() []error {
	return []error{ErrUnavailable, e.cause}
}

// RetryAfter is the time until a refusing breaker lets a probe through (0 when the endpoints
// were tried and failed).
func (e *unavailableError) RetryAfter() time.Duration {
	if e.open == nil {
		return 0
	}
	return e.open.RetryAfter()
}

// endpoint is one JSON-RPC URL of the chain with its own circuit breaker.
type endpoint struct {
	name       string // host only: the URL may hold an API key, so it never appears in errors
	url        string
	rpc        *rpc.Client
	eth        *ethclient.Client
	br         *breaker.Breaker
	open       atomic.Bool // the breaker is open (kept here: its OnChange runs under its lock)
	verified   atomic.Bool // its chain id was checked
	wrongChain atomic.Bool // it serves another chain: never used
}

// endpointName names an endpoint by position and host, leaving out path, query and credentials.
func endpointName(i int, raw string) string {
	host := "?"
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		host = u.Host
	}
	return fmt.Sprintf("rpc#%d %s", i+1, host)
}

// endpointError is a failure of one endpoint, its message stripped of the URL.
type endpointError struct {
	msg string
	err error
}

func (e *endpointError) Error() string { return e.msg }
func (e *endpointError) Unwrap() error { return e.err }

func (e *endpoint) wrap(err error) error {
	msg := err.Error()
	if e.url != "" {
		msg = strings.ReplaceAll(msg, e.url, "<url>")
		if u, perr := url.Parse(e.url); perr == nil {
			msg = strings.ReplaceAll(msg, u.String(), "<url>")
		}
	}
	return &endpointError{msg: e.name + ": " + msg, err: err}
}

// verdict is what an RPC call's error says about the endpoint.
type verdict int

const (
	answered       verdict = iota // a result, or a JSON-RPC error about the call itself
	endpointFailed                // transport, HTTP error, timeout, overload: try another endpoint
	callerGone                    // the caller's context ended: nothing learnt
)

// overloadMarkers are JSON-RPC error messages in which an endpoint says it could not serve the
// call rather than answering it (hosted providers' limits, a node still catching up).
var overloadMarkers = []string{"rate limit", "too many requests", "timed out", "timeout", "header not found", "busy", "capacity", "try again"}

// judge reads the error of a call made under ctx.
func judge(ctx context.Context, err error) verdict {
	switch {
	case err == nil:
		return answered
	case ctx.Err() != nil:
		return callerGone
	case errors.Is(err, ethereum.NotFound):
		return answered
	}
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) {
		return endpointFailed // 5xx, 429, and also 401/403/404: a misconfigured endpoint
	}
	var rpcErr rpc.Error
	if !errors.As(err, &rpcErr) {
		return endpointFailed // transport failure, our per-call timeout, an undecodable answer
	}
	switch rpcErr.ErrorCode() {
	case -32603, -32005, 429: // internal error, limit exceeded, rate limited
		return endpointFailed
	}
	msg := strings.ToLower(rpcErr.Error())
	for _, m := range overloadMarkers {
		if strings.Contains(msg, m) {
			return endpointFailed
		}
	}
	return answered
}

// attempt runs op on one endpoint after another, starting with the one that answered last, until
// one answers. With lookup, a NotFound answer passes the question on: a transaction or receipt
// is looked up on every endpoint, since one that lags may not have it yet.
func (c *Client) attempt(ctx context.Context, lookup bool, op func(ctx context.Context, e *endpoint) error) error {
	start := int(c.preferred.Load())
	var failed error
	var open *breaker.OpenError
	notFound := false
	for k := range c.eps {
		i := (start + k) % len(c.eps)
		e := c.eps[i]
		if e.wrongChain.Load() {
			continue
		}
		done, err := e.br.Allow()
		if err != nil {
			var oe *breaker.OpenError
			if errors.As(err, &oe) && (open == nil || oe.Until < open.Until) {
				open = oe
			}
			continue
		}
		err = c.callOn(ctx, e, op)
		switch judge(ctx, err) {
		case callerGone:
			done(true) // the endpoint did nothing wrong
			return err
		case endpointFailed:
			done(false)
			failed = e.wrap(err)
			c.log.Debug("rpc endpoint failed", "endpoint", e.name, "err", failed)
			continue
		}
		done(true)
		if lookup && errors.Is(err, ethereum.NotFound) {
			notFound = true
			continue
		}
		if !lookup && int(c.preferred.Load()) != i {
			c.preferred.Store(int32(i))
			c.log.Info("rpc: using another endpoint", "endpoint", e.name)
		}
		return err
	}
	switch {
	case notFound:
		return ethereum.NotFound
	case failed != nil:
		return &unavailableError{cause: failed}
	case open != nil:
		return &unavailableError{cause: open, open: open}
	}
	return &unavailableError{cause: errors.New("no endpoint serves the configured chain")}
}

// callOn runs op on e within the per-call timeout, checking e's chain id first if that could not
// be done at dial time.
func (c *Client) callOn(ctx context.Context, e *endpoint, op func(ctx context.Context, e *endpoint) error) error {
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	if !e.verified.Load() {
		if err := c.verify(cctx, e); err != nil {
			return err
		}
	}
	return op(cctx, e)
}

// verify checks that e serves the client's chain. An endpoint serving another chain is never used
// again.
func (c *Client) verify(ctx context.Context, e *endpoint) error {
	id, err := e.eth.ChainID(ctx)
	if err != nil {
		return err
	}
	if id.Cmp(c.chainID) != 0 {
		e.wrongChain.Store(true)
		c.log.Error("rpc endpoint serves another chain; it is not used", "endpoint", e.name, "chain_id", id, "want", c.chainID)
		return fmt.Errorf("%w: %s serves %s, configuration says %s", ErrChainIDMismatch, e.name, id, c.chainID)
	}
	e.verified.Store(true)
	return nil
}

// read runs op on the endpoints (see attempt), retried with backoff while every endpoint failed
// transiently. Reads only: a send has its own unknown-outcome logic.
func (c *Client) read(ctx context.Context, op func(ctx context.Context, e *endpoint) error) error {
	return c.retry(ctx, false, op)
}

// lookup is read for transactions and receipts: NotFound on one endpoint asks the next.
func (c *Client) lookup(ctx context.Context, op func(ctx context.Context, e *endpoint) error) error {
	return c.retry(ctx, true, op)
}

func (c *Client) retry(ctx context.Context, lookup bool, op func(ctx context.Context, e *endpoint) error) error {
	return retryReads(ctx, c.opts.Retry, func(ctx context.Context) error { return c.attempt(ctx, lookup, op) })
}

// readValue is read for a call with a result.
func readValue[T any](ctx context.Context, c *Client, op func(ctx context.Context, eth *ethclient.Client) (T, error)) (T, error) {
	var out T
	err := c.read(ctx, func(ctx context.Context, e *endpoint) error {
		v, err := op(ctx, e.eth)
		if err == nil {
			out = v
		}
		return err
	})
	return out, err
}

// Refusing reports whether every endpoint's circuit breaker refuses calls now, and how long until
// the first of them lets a probe through. A caller can turn work away at once while it does (a
// paid request that would need the chain).
func (c *Client) Refusing() (time.Duration, bool) {
	var wait time.Duration
	considered := false
	for _, e := range c.eps {
		if e.wrongChain.Load() {
			continue
		}
		considered = true
		d, refusing := e.br.Refusing()
		if !refusing {
			return 0, false
		}
		if wait == 0 || d < wait {
			wait = d
		}
	}
	return wait, considered
}

// breakerChanged keeps the overall state (every endpoint open, or not) and logs its changes.
func (c *Client) breakerChanged(e *endpoint, to breaker.State) {
	e.open.Store(to == breaker.Open)
	all := true
	for _, ep := range c.eps {
		all = all && (ep.open.Load() || ep.wrongChain.Load())
	}
	if c.allOpen.Swap(all) == all {
		return
	}
	if all {
		c.log.Error("chain rpc: every endpoint's circuit breaker is open; chain calls fail at once until one recovers")
	} else {
		c.log.Info("chain rpc: an endpoint is reachable again", "endpoint", e.name)
	}
}

// chainIDOf reads an endpoint's chain id at dial time.
func chainIDOf(ctx context.Context, e *endpoint) (*big.Int, error) { return e.eth.ChainID(ctx) }
