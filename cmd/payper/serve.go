package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/payper/payper/config"
	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/demoapi"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev [flags]", "dev [flags]", stderr)
	dataDir := fs.String("data-dir", ".payper-dev", "where the chain, the database, dev.json and the settler key live")
	listen := fs.String("listen", "127.0.0.1:8402", "gateway listen address")
	rpcListen := fs.String("rpc-listen", "127.0.0.1:8545", "embedded chain JSON-RPC listen address")
	upstream := fs.String("upstream", "", "sell this API instead of the built-in demo API (http URL)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	dev, err := app.StartDev(ctx, app.DevOptions{DataDir: *dataDir, Listen: *listen, RPCListen: *rpcListen, Upstream: *upstream, Logger: log})
	if err != nil {
		return err
	}
	defer dev.Close()
	printDevBanner(stdout, dev.Info, *dataDir, *upstream)
	return dev.Serve(ctx)
}

func printDevBanner(w io.Writer, info app.DevInfo, dataDir, upstream string) {
	payer := info.Accounts[app.DevPayerAccount]
	if upstream == "" {
		upstream = "built-in demo API"
	}
	fmt.Fprintf(w, "Payper dev environment is running.\n\n")
	fmt.Fprintf(w, "  chain     %s  (chain id %d, %s; every transaction is mined at once)\n", info.RPCURL, info.ChainID, info.Network)
	fmt.Fprintf(w, "  token     %s at %s (EIP-712 version %s, %d decimals)\n", info.Asset.Name, info.Asset.Address, info.Asset.Version, info.Asset.Decimals)
	fmt.Fprintf(w, "  gateway   %s  →  %s\n", info.GatewayURL, upstream)
	fmt.Fprintf(w, "  payTo     %s (test account 1)\n", info.PayTo)
	fmt.Fprintf(w, "  settler   %s (test account 0, pays the gas, authorizes channel claims)\n", info.Settler)
	fmt.Fprintf(w, "  escrow    %s (x402 batch-settlement: deposit once, pay each request by voucher)\n", escrow.BatchSettlementAddress.Hex())
	var priced []string
	for _, r := range info.Routes {
		priced = append(priced, fmt.Sprintf("%s %s %s", r.Method, r.Path, r.Price))
	}
	fmt.Fprintf(w, "  priced    %s\n", strings.Join(priced, ", "))
	for _, r := range demoapi.Routes {
		if r.Price == "" && upstream == "built-in demo API" {
			fmt.Fprintf(w, "  free      %s %s\n", r.Method, r.Path)
		}
	}
	fmt.Fprintf(w, "  data      %s (dev.json describes all of this)\n\n", dataDir)
	fmt.Fprintf(w, "The ten accounts of the public test mnemonic %q\nhold 10,000 ETH and 1,000,000 %s each. They are for local testing only.\n\n", "test test … junk", info.Asset.Name)
	fmt.Fprintf(w, "Pay for a request as test account %d (%s):\n\n", app.DevPayerAccount, payer)
	fmt.Fprintf(w, "  go run ./cmd/payper pay --dev-account %d %s/v1/quote\n", app.DevPayerAccount, info.GatewayURL)
	fmt.Fprintf(w, "  go run ./cmd/payper balance %s %s\n\n", payer, info.PayTo)
	fmt.Fprintf(w, "Or open an escrow channel once and pay each request by voucher, with no transaction:\n\n")
	fmt.Fprintf(w, "  go run ./cmd/payper channel open --dev-account 3 --deposit '$0.05' %s/v1/quote\n", info.GatewayURL)
	fmt.Fprintf(w, "  go run ./cmd/payper pay --dev-account 3 %s/v1/quote\n", info.GatewayURL)
	fmt.Fprintf(w, "  go run ./cmd/payper channel status --dev-account 3 %s/v1/quote\n\n", info.GatewayURL)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

func runGateway(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("gateway --config FILE", "gateway --config FILE [flags]", stderr)
	cfgPath := fs.String("config", "payper.yaml", "gateway configuration file (YAML)")
	logFormat := fs.String("log-format", "json", "text or json")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the gateway to this file until it stops (go tool pprof reads it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	gw, err := app.NewGateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "upstream", cfg.Upstream, "network", cfg.Network, "routes", len(cfg.Routes))
	return gw.Serve(ctx, ln)
}

// startCPUProfile profiles the process into path until the returned func is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
