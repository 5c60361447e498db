package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/evm"
	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/keyfile"
	"github.com/payper/payper/money"
)

func runBalance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("balance", "balance [flags] ADDRESS...", stderr)
	devDir := fs.String("data-dir", ".payper-dev", "read the chain and token from this dev environment's dev.json")
	rpcURL := fs.String("rpc-url", "", "chain JSON-RPC URL (default: from dev.json)")
	token := fs.String("token", "", "token address (default: from dev.json)")
	decimals := fs.Uint("decimals", 6, "token decimals, for display")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rpcURL == "" || *token == "" {
		var info app.DevInfo
		data, err := os.ReadFile(filepath.Join(*devDir, "dev.json"))
		if err != nil {
			return fmt.Errorf("need --rpc-url and --token, or a running `payper dev`: %w", err)
		}
		if err := json.Unmarshal(data, &info); err != nil {
			return fmt.Errorf("dev.json: %w", err)
		}
		if *rpcURL == "" {
			*rpcURL = info.RPCURL
		}
		if *token == "" {
			*token = info.Asset.Address
			*decimals = uint(info.Asset.Decimals)
		}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	c, err := evm.Dial(ctx, *rpcURL, nil, evm.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, a := range fs.Args() {
		if !common.IsHexAddress(a) {
			return fmt.Errorf("%q is not an address", a)
		}
		bal, err := c.BalanceOf(ctx, common.HexToAddress(*token), common.HexToAddress(a))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s  %s  (%s atomic)\n", common.HexToAddress(a).Hex(), money.FormatDollars(bal, uint8(*decimals)), bal)
	}
	return nil
}

func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "Usage: payper keys new --out FILE")
		return errUsage
	}
	fs := newFlagSet("keys new", "keys new --out FILE", stderr)
	out := fs.String("out", "", "file to create (mode 0600; never overwritten)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errUsage
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	if err := keyfile.Write(*out, key); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", crypto.PubkeyToAddress(key.PublicKey).Hex())
	return nil
}

func runConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 || args[0] != "validate" {
		fmt.Fprintln(stderr, "Usage: payper config validate FILE")
		return errUsage
	}
	cfg, err := config.Load(args[1])
	if err != nil {
		return err
	}
	rules, err := cfg.PricingRules()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is valid: %s, upstream %s, %d priced routes\n", args[1], cfg.Network, cfg.Upstream, len(rules))
	for _, r := range rules {
		m := r.Method
		if m == "" {
			m = "*"
		}
		fmt.Fprintf(stdout, "  %-6s %-30s %s\n", m, r.Path, money.FormatDollars(new(big.Int).Set(r.Price), cfg.Asset.Decimals))
	}
	return nil
}
