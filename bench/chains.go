package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/app"
)

// Roles of the public test mnemonic's accounts in exact mode. Payers are firstPayer to
// firstPayer+payerCount-1, as in channel mode. Every server under test settles from an account
// of its own, so no two share a nonce sequence.
const (
	deployerAccount            = 0  // deploys and mints the token (anvil)
	payToAccount               = 1  // receives every payment
	officialFacilitatorAccount = 10 // pays the official stack's settlement gas
	firstSettlerAccount        = 11 // Payper gateway i settles from account 11+i
)

// devChainName names the embedded chain in the report.
const devChainName = "embedded dev chain"

// anvilChainID is anvil's default chain id, kept so nothing mistakes it for the dev chain (1337).
const anvilChainID = 31337

// chainEnv is a chain the exact mode runs on, with the test token deployed and the accounts
// funded.
type chainEnv struct {
	name    string // for the report
	detail  string // how it mines
	rpcURL  string
	chainID uint64
	token   common.Address
	rpc     *rpcClient
	anvil   *child          // nil for the embedded chain
	dev     *devchain.Chain // nil for anvil
}

func (e *chainEnv) network() string { return "eip155:" + strconv.FormatUint(e.chainID, 10) }

// close stops the chain.
func (e *chainEnv) close() {
	if e.anvil != nil {
		e.anvil.stop()
	}
	if e.dev != nil {
		e.dev.Close()
	}
}

// anvilBinary finds the anvil executable that the @foundry-rs/anvil npm package installs for
// this platform (one of its optional dependencies ships it; nothing is downloaded).
func anvilBinary(interopDir string) (string, error) {
	platforms := map[string]string{
		"linux/amd64": "linux-amd64", "linux/arm64": "linux-arm64",
		"darwin/amd64": "darwin-amd64", "darwin/arm64": "darwin-arm64",
	}
	p, ok := platforms[runtime.GOOS+"/"+runtime.GOARCH]
	if !ok {
		return "", fmt.Errorf("@foundry-rs/anvil ships no binary for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	scope := filepath.Join(interopDir, "node_modules", "@foundry-rs")
	// The package's install script puts the binary beside it when the platform package is
	// missing; it fetches it from the npm registry too.
	for _, bin := range []string{filepath.Join(scope, "anvil-"+p, "bin", "anvil"), filepath.Join(scope, "anvil", "anvil")} {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	return "", fmt.Errorf("anvil is not installed in %s: run `(cd %s && npm ci)`", scope, interopDir)
}

// startAnvil starts anvil on a free loopback port and sets it up like the dev chain's genesis:
// the test token at the same address, 1,000,000 tokens for each of the first ten test
// accounts, Multicall3 at its canonical address. Anvil mines a block as soon as a transaction
// arrives (automine, its default) and stamps it with the wall clock's second, blocks of the
// same second sharing it, so its clock never runs ahead of the wall clock however fast
// payments come; the report checks that after every phase.
func startAnvil(ctx context.Context, bin string, accounts int) (_ *chainEnv, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--chain-id", strconv.Itoa(anvilChainID),
		"--mnemonic", devkeys.TestMnemonic, "--accounts", strconv.Itoa(accounts),
		"--quiet")
	c, _, err := startChild(ctx, "anvil", cmd, nil)
	if err != nil {
		return nil, err
	}
	env := &chainEnv{name: "anvil", rpcURL: "http://127.0.0.1:" + strconv.Itoa(port), anvil: c}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	env.rpc = newRPCClient(env.rpcURL)
	if err := waitRPC(ctx, env.rpc, c); err != nil {
		return nil, err
	}
	if env.chainID, err = env.rpc.chainID(ctx); err != nil {
		return nil, err
	}
	version, _ := env.rpc.clientVersion(ctx)
	env.detail = version + ", automine: a block as soon as a transaction arrives, stamped with the wall clock"
	if env.token, err = deployToken(ctx, env.rpc); err != nil {
		return nil, fmt.Errorf("anvil: %w", err)
	}
	if err := placeMulticall3(ctx, env.rpc); err != nil {
		return nil, fmt.Errorf("anvil: %w", err)
	}
	return env, nil
}

// waitRPC waits until the node answers, or its process exits.
func waitRPC(ctx context.Context, rpc *rpcClient, c *child) error {
	deadline := time.Now().Add(childStartTimeout)
	for {
		_, err := rpc.chainID(ctx)
		if err == nil {
			return nil
		}
		if exit := c.exited(); exit != nil {
			return exit
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %s: %w", c.name, childStartTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deployToken deploys the test token from the deployer account by transaction and mints the
// dev chain's genesis amount to the first ten test accounts.
func deployToken(ctx context.Context, rpc *rpcClient) (common.Address, error) {
	accounts := devkeys.DevAccounts(10)
	minter := accounts[deployerAccount].Address
	token := testusdc.NewTestUSDC()
	r, err := rpc.sendFrom(ctx, minter, nil, append(testusdc.CreationCode(), token.PackConstructor(minter)...))
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy the test token: %w", err)
	}
	if r.ContractAddress == nil {
		return common.Address{}, errors.New("deploy the test token: no contract address in the receipt")
	}
	addr := *r.ContractAddress
	for _, a := range accounts {
		if _, err := rpc.sendFrom(ctx, minter, &addr, token.PackMint(a.Address, app.DevTokenPerAccount)); err != nil {
			return common.Address{}, fmt.Errorf("mint to %s: %w", a.Address, err)
		}
	}
	return addr, nil
}

// placeMulticall3 deploys Multicall3 by transaction and copies its runtime code (no immutables,
// no storage) to the canonical address, where the dev chain's genesis has it too.
func placeMulticall3(ctx context.Context, rpc *rpcClient) error {
	deployer := devkeys.DevAccounts(1)[deployerAccount].Address
	r, err := rpc.sendFrom(ctx, deployer, nil, multicall3.CreationCode())
	if err != nil {
		return fmt.Errorf("deploy Multicall3: %w", err)
	}
	if r.ContractAddress == nil {
		return errors.New("deploy Multicall3: no contract address in the receipt")
	}
	code, err := rpc.code(ctx, *r.ContractAddress)
	if err != nil {
		return err
	}
	return rpc.call(ctx, nil, "anvil_setCode", multicall3.Address, "0x"+common.Bytes2Hex(code))
}

// startDevChain starts the embedded dev chain as `payper dev` runs it (paced: at most a block a
// second), with the dev genesis plus gas money for the settlers of the servers under test.
func startDevChain(ctx context.Context, dataDir string, accounts int, log *slog.Logger) (*chainEnv, error) {
	alloc, contracts := app.DevGenesis()
	eth := new(big.Int).Mul(big.NewInt(10_000), big.NewInt(1e18))
	for _, a := range devkeys.DevAccounts(accounts) {
		if _, ok := alloc[a.Address]; !ok {
			alloc[a.Address] = eth
		}
	}
	chain, err := devchain.Start(ctx, devchain.Config{
		ListenAddr: "127.0.0.1:0", DataDir: dataDir, Alloc: alloc, Contracts: contracts, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	return &chainEnv{
		name: devChainName, detail: "in the benchmark's process, paced as `payper dev` runs it: at most one block a second, each taking every transaction that arrived",
		rpcURL: chain.RPCURL(), chainID: chain.ChainID().Uint64(), token: app.DevTokenAddress,
		rpc: newRPCClient(chain.RPCURL()), dev: chain,
	}, nil
}

// freePort asks the kernel for a free loopback port. Another process could take it before the
// child binds it; on a benchmark machine that is unlikely, and the child then fails loudly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
