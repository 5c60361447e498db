package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devchain"
	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/config"
	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/contracts/multicall3"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/demoapi"
	"github.com/payper/payper/internal/keyfile"
	"github.com/payper/payper/money"
)

// Dev chain layout. The token sits where the first contract deployed by test account 0 lands
// on every local EVM dev chain, so addresses look familiar.
var (
	DevTokenAddress = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	// DevTokenPerAccount is what genesis credits each test account: 1,000,000 tokens.
	DevTokenPerAccount = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(1_000_000))
	devETHPerAccount   = new(big.Int).Mul(big.NewInt(10_000), big.NewInt(1e18))
)

// Roles of the test accounts in the dev environment.
const (
	DevSettlerAccount = 0 // pays settlement gas
	DevPayToAccount   = 1 // receives payments
	DevPayerAccount   = 2 // the walkthrough's payer
	devAccountCount   = 10
)

// DevOptions configure StartDev.
type DevOptions struct {
	DataDir   string // default ".payper-dev"
	Listen    string // gateway address, default "127.0.0.1:8402"
	RPCListen string // chain JSON-RPC address, default "127.0.0.1:8545"
	Upstream  string // "" serves the demo API
	Logger    *slog.Logger
}

// DevInfo is what `payper dev` writes to <data-dir>/dev.json for tools and tests.
type DevInfo struct {
	GatewayURL string         `json:"gatewayURL"`
	RPCURL     string         `json:"rpcURL"`
	ChainID    uint64         `json:"chainId"`
	Network    string         `json:"network"`
	Asset      DevAsset       `json:"asset"`
	PayTo      string         `json:"payTo"`
	Settler    string         `json:"settler"`
	Accounts   []string       `json:"accounts"`
	Routes     []DevRouteInfo `json:"routes"`
}

// DevAsset describes the dev token.
type DevAsset struct {
	Address  string `json:"address"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Decimals uint8  `json:"decimals"`
}

// DevRouteInfo is one priced route; Amount is Price in atomic units.
type DevRouteInfo struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Price  string `json:"price"`
	Amount string `json:"amount"`
}

// Dev is a running dev environment.
type Dev struct {
	Info     DevInfo
	Chain    *devchain.Chain
	Gateway  *Gateway
	listener net.Listener
	demo     *http.Server
	log      *slog.Logger
}

// DevGenesis returns the dev chain's genesis: ETH for the test accounts and the test stablecoin,
// which credits each of them DevTokenPerAccount.
func DevGenesis() (map[common.Address]*big.Int, []devchain.GenesisContract) {
	accounts := devkeys.DevAccounts(devAccountCount)
	minter := accounts[0].Address
	token := testusdc.NewTestUSDC()
	alloc := make(map[common.Address]*big.Int, len(accounts))
	var mints []devchain.GenesisCall
	for _, a := range accounts {
		alloc[a.Address] = devETHPerAccount
		mints = append(mints, devchain.GenesisCall{From: minter, Data: token.PackMint(a.Address, DevTokenPerAccount)})
	}
	initCode := append(testusdc.CreationCode(), token.PackConstructor(minter)...)
	return alloc, []devchain.GenesisContract{
		{Address: DevTokenAddress, InitCode: initCode, Deployer: minter, Calls: mints},
		// The escrow and its deposit collector sit where stock batch-settlement clients expect
		// them on every chain, and Multicall3 where viem looks for it.
		{Address: escrow.BatchSettlementAddress, InitCode: escrow.BatchSettlementCreationCode(), Deployer: minter},
		{Address: escrow.ERC3009DepositCollectorAddress, InitCode: escrow.ERC3009DepositCollectorInitCode(escrow.BatchSettlementAddress), Deployer: minter},
		{Address: multicall3.Address, InitCode: multicall3.CreationCode(), Deployer: minter},
	}
}

// StartDev starts the embedded chain, the demo API (unless an upstream is given) and a gateway
// in front of it, all on loopback by default, and writes dev.json.
func StartDev(ctx context.Context, opts DevOptions) (_ *Dev, err error) {
	if opts.DataDir == "" {
		opts.DataDir = ".payper-dev"
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8402"
	}
	if opts.RPCListen == "" {
		opts.RPCListen = devchain.DefaultListenAddr
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, err
	}
	d := &Dev{log: log}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	alloc, contracts := DevGenesis()
	d.Chain, err = devchain.Start(ctx, devchain.Config{
		ListenAddr: opts.RPCListen, DataDir: filepath.Join(opts.DataDir, "chain"),
		Alloc: alloc, Contracts: contracts, Logger: log.With("component", "devchain"),
	})
	if err != nil {
		return nil, fmt.Errorf("dev chain: %w", err)
	}
	upstream := opts.Upstream
	if upstream == "" {
		if upstream, err = d.startDemoAPI(); err != nil {
			return nil, err
		}
	}
	cfg, err := devConfig(opts, d.Chain.RPCURL(), upstream)
	if err != nil {
		return nil, err
	}
	if d.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("gateway listen: %w", err)
	}
	if d.Gateway, err = NewGateway(ctx, cfg, log); err != nil {
		return nil, err
	}
	d.Info, err = devInfo(cfg, "http://"+d.listener.Addr().String(), d.Chain.RPCURL(), d.Gateway.chain.SettlerAddress())
	if err != nil {
		return nil, err
	}
	return d, writeJSONFile(filepath.Join(opts.DataDir, "dev.json"), d.Info)
}

func (d *Dev) startDemoAPI() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo API: %w", err)
	}
	d.demo = &http.Server{Handler: demoapi.Handler(time.Now), ReadHeaderTimeout: 10 * time.Second}
	go d.demo.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// devConfig is the gateway configuration of the dev environment, validated like any file.
func devConfig(opts DevOptions, rpcURL, upstream string) (*config.Config, error) {
	accounts := devkeys.DevAccounts(devAccountCount)
	keyPath := filepath.Join(opts.DataDir, "settler.key")
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		// Test account 0 of the public test mnemonic: a dev-only key that never holds real funds.
		if err := keyfile.Write(keyPath, accounts[DevSettlerAccount].Key); err != nil {
			return nil, err
		}
	}
	cfg := config.Default()
	cfg.Listen = opts.Listen
	cfg.Upstream = upstream
	cfg.DataDir = opts.DataDir
	cfg.Database.DSN = filepath.Join(opts.DataDir, "payper.db")
	cfg.Network = fmt.Sprintf("eip155:%d", devchain.DefaultChainID)
	cfg.RPCURL = rpcURL
	cfg.Asset = config.Asset{Address: DevTokenAddress.Hex(), Name: testusdc.Name, Version: testusdc.EIP712Version, Decimals: testusdc.Decimals}
	cfg.PayTo = accounts[DevPayToAccount].Address.Hex()
	cfg.SettlerKeyFile = keyPath
	cfg.Channels.Enabled = true
	for _, r := range demoapi.Routes {
		if r.Price != "" {
			cfg.Routes = append(cfg.Routes, config.Route{Method: r.Method, Path: r.Path, Price: r.Price, Description: r.Description})
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev configuration: %w", err)
	}
	return cfg, nil
}

// devInfo describes the environment; settler is the key the gateway really loaded (a data dir
// may keep a settler key of its own).
func devInfo(cfg *config.Config, gatewayURL, rpcURL string, settler common.Address) (DevInfo, error) {
	info := DevInfo{
		GatewayURL: gatewayURL, RPCURL: rpcURL, ChainID: cfg.ChainID().Uint64(), Network: cfg.Network,
		Asset:   DevAsset{Address: cfg.Asset.Address, Name: cfg.Asset.Name, Version: cfg.Asset.Version, Decimals: cfg.Asset.Decimals},
		PayTo:   cfg.PayTo,
		Settler: settler.Hex(),
	}
	for _, a := range devkeys.DevAccounts(devAccountCount) {
		info.Accounts = append(info.Accounts, a.Address.Hex())
	}
	for _, r := range cfg.Routes {
		amount, err := money.ParseAmount(r.Price, cfg.Asset.Decimals)
		if err != nil {
			return DevInfo{}, err
		}
		info.Routes = append(info.Routes, DevRouteInfo{Method: r.Method, Path: r.Path, Price: r.Price, Amount: amount.String()})
	}
	return info, nil
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Serve runs the gateway until ctx ends.
func (d *Dev) Serve(ctx context.Context) error { return d.Gateway.Serve(ctx, d.listener) }

// Close stops everything StartDev started.
func (d *Dev) Close() {
	if d.Gateway != nil {
		d.Gateway.Close()
	}
	if d.listener != nil {
		d.listener.Close()
	}
	if d.demo != nil {
		d.demo.Close()
	}
	if d.Chain != nil {
		d.Chain.Close()
	}
}
