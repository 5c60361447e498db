// Package devtest starts a complete dev environment (embedded chain, token, escrow, demo API and
// gateway, all on loopback) for one test, with a read-only client of its chain. It is for
// _test.go files of packages outside internal/app, which cannot import it from its own tests.
package devtest

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/internal/app"
)

// Env is a running dev environment. Everything stops when the test ends.
type Env struct {
	Dev     *app.Dev
	Chain   *evm.Client
	DataDir string
	t       testing.TB
}

// Start starts a dev environment whose gateway serves until the test ends. Empty options
// get a temporary data dir and free loopback ports.
func Start(t testing.TB, opts app.DevOptions) *Env {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.RPCListen == "" {
		opts.RPCListen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := app.StartDev(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("start dev environment: %v", err)
	}
	served := make(chan struct{})
	go func() { defer close(served); dev.Serve(ctx) }()
	chain, err := evm.Dial(ctx, dev.Info.RPCURL, new(big.Int).SetUint64(dev.Info.ChainID), evm.Options{})
	if err != nil {
		cancel()
		<-served
		dev.Close()
		t.Fatalf("dial dev chain: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-served
		chain.Close()
		dev.Close()
	})
	return &Env{Dev: dev, Chain: chain, DataDir: opts.DataDir, t: t}
}

// Balance is owner's balance of the dev token.
func (e *Env) Balance(owner common.Address) *big.Int {
	e.t.Helper()
	b, err := e.Chain.BalanceOf(context.Background(), app.DevTokenAddress, owner)
	if err != nil {
		e.t.Fatalf("balanceOf %s: %v", owner.Hex(), err)
	}
	return b
}

// Block is the chain's latest block number.
func (e *Env) Block() uint64 {
	e.t.Helper()
	n, err := e.Chain.BlockNumber(context.Background())
	if err != nil {
		e.t.Fatalf("block number: %v", err)
	}
	return n
}
