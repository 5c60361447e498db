// Package devchain runs an in-process Ethereum development chain: a
// go-ethereum node built the way `geth --dev` builds it (node + eth service +
// simulated beacon with period 0), so transactions are mined as they reach
// the pool, at most one block a second so that the chain's clock never runs
// ahead of the wall clock (see sealer). It survives a kill of its process
// (see storage). It serves JSON-RPC over HTTP and WebSocket, on one port, for
// external clients and can pre-place contracts into genesis at fixed addresses.
//
// It is for local development and tests only. It does not import other
// project packages; callers pass balances and contract bytecode in.
package devchain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// Defaults applied by Start to zero Config fields.
const (
	DefaultListenAddr = "127.0.0.1:8545"
	DefaultChainID    = 1337
	DefaultGasLimit   = 60_000_000
)

// ErrGenesisMismatch means DataDir holds a chain whose genesis differs from
// the one the Config produces (different chain id, balances or contracts).
// Remove the directory to start over.
var ErrGenesisMismatch = errors.New("devchain: data dir holds a different genesis")

// Config configures a dev chain. The zero value is usable.
type Config struct {
	// ListenAddr is the JSON-RPC address, HTTP and WebSocket alike; port 0
	// picks a free port and an empty host listens on all interfaces. Default
	// DefaultListenAddr.
	ListenAddr string
	// DataDir keeps the chain across restarts, a killed process included (every block a
	// client could read is on disk; see storage); "" keeps it in memory.
	DataDir string
	// ChainID defaults to DefaultChainID.
	ChainID uint64
	// Alloc holds genesis ETH balances in wei.
	Alloc map[common.Address]*big.Int
	// Contracts are placed into genesis in order; see GenesisContract.
	Contracts []GenesisContract
	// GasLimit is the block gas limit; default DefaultGasLimit.
	GasLimit uint64
	// Logger receives the node's warnings and errors; default discards.
	Logger *slog.Logger
	// Unpaced seals a block as soon as transactions arrive, however many a
	// second, as geth --dev does. Each block is at least a second after its
	// parent, so under load the chain's clock then runs ahead of the wall
	// clock. For tests that need many blocks quickly; see sealer.
	Unpaced bool
	// Period, when set, seals a block every Period whether transactions
	// wait or not, as a public chain does (a 2 s chain: 2 * time.Second),
	// instead of on demand. Whole seconds, at least one: a block's timestamp
	// is in seconds and never behind its parent's. Unpaced is then ignored.
	Period time.Duration
}

func (c Config) withDefaults() Config {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.ChainID == 0 {
		c.ChainID = DefaultChainID
	}
	if c.GasLimit == 0 {
		c.GasLimit = DefaultGasLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Chain is a running dev chain. Close it when done.
type Chain struct {
	stack   *node.Node
	eth     *eth.Ethereum
	sealer  *sealer
	rpcURL  string
	wsURL   string
	chainID *big.Int

	closeOnce sync.Once
	closeErr  error
}

// Start builds the genesis, starts the node and returns once the JSON-RPC
// endpoint answers. With a DataDir that already holds a chain, the chain is
// reopened; its genesis must match the one cfg produces (ErrGenesisMismatch).
func Start(ctx context.Context, cfg Config) (*Chain, error) {
	cfg = cfg.withDefaults()
	if cfg.GasLimit < params.MinGasLimit {
		return nil, fmt.Errorf("devchain: gas limit %d below minimum %d", cfg.GasLimit, params.MinGasLimit)
	}
	if cfg.Period != 0 && (cfg.Period < time.Second || cfg.Period%time.Second != 0) {
		return nil, fmt.Errorf("devchain: period %s is not a whole number of seconds", cfg.Period)
	}
	genesis, err := buildGenesis(cfg)
	if err != nil {
		return nil, err
	}
	host, port, err := reserveListenAddr(cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nodeCfg := nodeConfig(cfg, host, port)
	store := chooseStorage(nodeCfg.ResolvePath("chaindata"))
	nodeCfg.DBEngine = store.engine
	if !store.crashSafe {
		cfg.Logger.Warn("the dev chain's data dir was created by an earlier version and loses recent blocks if the process is killed; remove it to start a crash-safe chain",
			"dir", cfg.DataDir)
	}
	stack, err := node.New(nodeCfg)
	if err != nil {
		return nil, fmt.Errorf("devchain: create node: %w", err)
	}
	if err := checkStoredGenesis(stack, genesis.ToBlock().Hash()); err != nil {
		return nil, errors.Join(err, stack.Close())
	}
	backend, sealer, err := registerServices(stack, ethConfig(cfg, genesis, store), pacing{unpaced: cfg.Unpaced, period: cfg.Period})
	if err != nil {
		return nil, err
	}
	if err := sealFirstBlock(ctx, backend, sealer); err != nil {
		return nil, errors.Join(err, abandon(stack))
	}
	if err := stack.Start(); err != nil {
		// Start releases what it opened; if it failed on the listener (port
		// taken since reserveListenAddr), geth leaves the unstarted eth
		// service's goroutines behind.
		return nil, fmt.Errorf("devchain: start node: %w", err)
	}
	c := &Chain{
		stack:   stack,
		eth:     backend,
		sealer:  sealer,
		rpcURL:  dialableURL(stack.HTTPEndpoint()),
		wsURL:   dialableURL(stack.WSEndpoint()),
		chainID: new(big.Int).SetUint64(cfg.ChainID),
	}
	if err := waitReady(ctx, c.rpcURL, c.chainID); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// checkStoredGenesis compares the genesis hash stored in DataDir (if any) with
// the configured one. geth detects a mismatch too, but only after it has
// opened state files it then fails to release, which makes the next Start in
// the same process abort; checking first avoids that.
func checkStoredGenesis(stack *node.Node, want common.Hash) error {
	dir := stack.ResolvePath("chaindata")
	if dir == "" || rawdb.PreexistingDatabase(dir) == "" {
		return nil // in memory, or a fresh data dir
	}
	db, err := stack.OpenDatabaseWithOptions("chaindata", node.DatabaseOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("devchain: open %s: %w", dir, err)
	}
	defer db.Close()
	if stored := rawdb.ReadCanonicalHash(db, 0); stored != (common.Hash{}) && stored != want {
		return fmt.Errorf("%w: stored %s, configured %s", ErrGenesisMismatch, stored, want)
	}
	return nil
}

// registerServices adds the eth service, the log filter API, the
// simulated beacon and its sealer to stack, mirroring what geth does for
// --dev. On error the node is closed.
func registerServices(stack *node.Node, ethCfg *ethconfig.Config, pace pacing) (*eth.Ethereum, *sealer, error) {
	backend, err := eth.New(stack, ethCfg)
	if err != nil {
		var mismatch *core.GenesisMismatchError
		if errors.As(err, &mismatch) {
			err = fmt.Errorf("%w: %w", ErrGenesisMismatch, err)
		} else {
			err = fmt.Errorf("devchain: create eth service: %w", err)
		}
		return nil, nil, errors.Join(err, stack.Close())
	}
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{
		LogCacheSize:  ethCfg.FilterLogCacheSize,
		LogQueryLimit: ethCfg.LogQueryLimit,
		RangeLimit:    ethCfg.RangeLimit,
	})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})

	// Period 0: the beacon seals only when asked. The sealer asks, paced (see sealer); it
	// replaces the beacon's own on-demand loop, which comes with the "dev" RPC namespace (not
	// served here anyway).
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		return nil, nil, errors.Join(
			fmt.Errorf("devchain: create simulated beacon: %w", err),
			abandon(stack))
	}
	stack.RegisterLifecycle(beacon)
	sealer := newSealer(backend, beacon, pace)
	stack.RegisterLifecycle(sealer)
	return backend, sealer, nil
}

// abandon shuts down a node whose services were created but not started.
// geth stops services only on a running node, so it is started, then closed.
func abandon(stack *node.Node) error {
	if err := stack.Start(); err != nil {
		return err
	}
	return stack.Close()
}

// sealFirstBlock seals an empty block 1 on a fresh chain and waits for the
// transaction indexer to catch up, before the RPC endpoint opens. On a chain
// still at genesis, geth's indexer reports "in progress" until it has indexed
// a block, and eth_getTransactionReceipt then answers "transaction indexing
// is in progress" instead of null, which breaks clients polling for receipts.
func sealFirstBlock(ctx context.Context, backend *eth.Ethereum, sealer *sealer) error {
	chain := backend.BlockChain()
	if genesis := chain.CurrentBlock(); genesis.Number.Sign() == 0 {
		// Stamped a second in the past, so that the first transaction is
		// mined at once instead of waiting for the next second (see sealer).
		// The pool is empty, the RPC endpoint is not open yet and the
		// sealer's loop has not started: nothing seals concurrently.
		back := max(time.Now().Unix()-1-int64(genesis.Time), 1)
		if err := sealer.adjustTime(time.Duration(back) * time.Second); err != nil {
			return fmt.Errorf("devchain: seal the first block: %w", err)
		}
		if chain.CurrentBlock().Number.Sign() == 0 {
			return errors.New("devchain: could not seal the first block")
		}
	}
	for !chain.TxIndexDone() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("devchain: waiting for the transaction index: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// AdjustTime seals an empty block d later than the latest one, so that the chain's clock jumps
// ahead (blocks that follow keep counting from there). It waits for pending transactions to be
// mined first, since the jump must come in a block of its own. For tests of time locks, such as an
// escrow withdraw delay; d is whole seconds.
func (c *Chain) AdjustTime(ctx context.Context, d time.Duration) error {
	for {
		err := c.sealer.adjustTime(d)
		if err == nil {
			return nil
		}
		if pending, _ := c.eth.TxPool().Stats(); pending == 0 {
			return fmt.Errorf("devchain: adjust time: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// RPCURL returns the HTTP JSON-RPC URL, with the real port when the
// configured one was 0.
func (c *Chain) RPCURL() string { return c.rpcURL }

// WSURL returns the WebSocket JSON-RPC URL (the same port as RPCURL), for
// clients that subscribe to new heads or logs.
func (c *Chain) WSURL() string { return c.wsURL }

// ChainID returns the chain id (a fresh copy).
func (c *Chain) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// Close stops the node, flushes the chain to DataDir (if any) and frees the
// listen port. Calling it again returns the first result.
func (c *Chain) Close() error {
	c.closeOnce.Do(func() {
		if err := c.stack.Close(); err != nil {
			c.closeErr = fmt.Errorf("devchain: close node: %w", err)
		}
	})
	return c.closeErr
}

func nodeConfig(cfg Config, host string, port int) *node.Config {
	return &node.Config{
		Name:    "devchain",
		DataDir: cfg.DataDir,
		P2P: p2p.Config{
			// Like --dev: no networking at all.
			MaxPeers:    0,
			ListenAddr:  "",
			NoDial:      true,
			NoDiscovery: true,
		},
		HTTPHost:    host,
		HTTPPort:    port,
		HTTPModules: []string{"eth", "net", "web3", "txpool", "debug"},
		// The node holds no keys, and callers may reach it under any host
		// name (containers, LAN), so host-header filtering is off.
		HTTPVirtualHosts: []string{"*"},
		// WebSocket on the same port as HTTP (geth serves both on one
		// listener when the ports match), for subscriptions; for the same
		// reason as above, from any origin.
		WSHost:               host,
		WSPort:               port,
		WSModules:            []string{"eth", "net", "web3"},
		WSOrigins:            []string{"*"},
		HTTPTimeouts:         rpc.DefaultHTTPTimeouts,
		BatchRequestLimit:    node.DefaultConfig.BatchRequestLimit,
		BatchResponseMaxSize: node.DefaultConfig.BatchResponseMaxSize,
		HTTPBodyLimit:        node.DefaultConfig.HTTPBodyLimit,
		UseLightweightKDF:    true,
		Logger:               gethLogger(cfg.Logger),
	}
}

func ethConfig(cfg Config, genesis *core.Genesis, store storage) *ethconfig.Config {
	ec := ethconfig.Defaults
	ec.Genesis = genesis
	ec.StateScheme = store.scheme
	ec.NoPruning = store.archive
	ec.NetworkId = cfg.ChainID
	ec.SyncMode = ethconfig.FullSync
	// Miner and pool share a 1 wei floor (as in geth --dev): a transaction
	// the pool accepts is one the miner will include, so the beacon never
	// spins on an unminable transaction, and the fee oracle starts at 1 wei.
	ec.Miner.GasPrice = big.NewInt(1)
	ec.TxPool.PriceLimit = 1
	ec.Miner.GasCeil = cfg.GasLimit
	// No local-transaction journal or resubmission: a dev chain mines
	// everything immediately, so there is nothing to keep.
	ec.TxPool.NoLocals = true
	// Small chain, small caches; geth's defaults are sized for mainnet.
	ec.DatabaseCache = 64
	ec.TrieCleanCache = 32
	ec.TrieDirtyCache = 32
	ec.SnapshotCache = store.snapshotCache
	// eth_getLogs scans blocks directly instead of running the background
	// log indexer, which a short dev chain does not need.
	ec.LogNoHistory = true
	return &ec
}

// reserveListenAddr checks that addr can be bound and resolves port 0 to a
// concrete free port. The node opens its listener only after the eth service
// exists, and a failure at that point would leave that service running, so
// the check happens up front.
func reserveListenAddr(addr string) (string, int, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("devchain: listen address %q: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", 0, fmt.Errorf("devchain: listen on %q: %w", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return "", 0, fmt.Errorf("devchain: release %q: %w", addr, err)
	}
	if host == "" {
		// geth treats an empty HTTP host as "HTTP disabled".
		host = "0.0.0.0"
	}
	return host, port, nil
}

// dialableURL turns the node's endpoint into a URL a local client can dial,
// replacing a wildcard listen host with loopback.
func dialableURL(endpoint string) string {
	scheme, hostPort, ok := strings.Cut(endpoint, "://")
	if !ok {
		return endpoint
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return endpoint
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
