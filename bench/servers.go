package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"gopkg.in/yaml.v3"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/contracts/testusdc"
	"github.com/payper/payper/internal/keyfile"
)

// exactPrice is what the quote route costs on both servers, in the token's atomic units
// ($0.001, the demo API's price).
const exactPrice = "1000"

// exactMaxTimeoutSeconds is both servers' maxTimeoutSeconds, so that authorizations signed
// before a phase stay valid through it (the load generator signs ahead, as wrk runs did).
const exactMaxTimeoutSeconds = 300

// officialServerScript is the official stack's server, in interop/ beside its pinned packages.
const officialServerScript = "bench-official-server.mjs"

// startOfficial starts the official x402 TypeScript stack (Express, @x402/express and an
// in-process facilitator) selling the quote route on env's chain, and returns its address.
func startOfficial(ctx context.Context, interopDir string, env *chainEnv) (*child, string, error) {
	script := filepath.Join(interopDir, officialServerScript)
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "@x402", "express")); err != nil {
		return nil, "", fmt.Errorf("the official x402 packages are not installed: run `(cd %s && npm ci)`", interopDir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "", fmt.Errorf("node (Node.js 20 or later) is needed for the official stack: %w", err)
	}
	key := devkeys.DevAccounts(officialFacilitatorAccount + 1)[officialFacilitatorAccount].Key // public test mnemonic
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(),
		"RPC_URL="+env.rpcURL,
		"CHAIN_ID="+strconv.FormatUint(env.chainID, 10),
		"FACILITATOR_KEY="+hexutil.Encode(crypto.FromECDSA(key)),
		"ASSET="+env.token.Hex(),
		"ASSET_NAME="+testusdc.Name,
		"ASSET_VERSION="+testusdc.EIP712Version,
		"PRICE="+exactPrice,
		"PAY_TO="+devkeys.DevAccounts(payToAccount + 1)[payToAccount].Address.Hex(),
		"MAX_TIMEOUT_SECONDS="+strconv.Itoa(exactMaxTimeoutSeconds),
		"ROUTE_PATH="+quotePath,
		"BODY="+strings.TrimSpace(string(upstreamBody)),
		"POLL_MS=50",
		"PORT=0",
	)
	c, port, err := startChild(ctx, "official x402 server (node)", cmd, func(line string) (string, bool) {
		p, ok := strings.CutPrefix(line, "LISTENING ")
		return strings.TrimSpace(p), ok
	})
	if err != nil {
		return nil, "", err
	}
	if _, err := parsePort(port); err != nil {
		c.stop()
		return nil, "", fmt.Errorf("official server: %w", err)
	}
	return c, "127.0.0.1:" + port, nil
}

// buildPayper builds the payper command into dir, so that each gateway under test runs as its
// own process, as the official stack's server does.
func buildPayper(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "payper")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/payper/payper/cmd/payper")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build payper: %w\n%s", err, out)
	}
	return bin, nil
}

// startPayper starts `payper gateway` in front of upstream on env's chain, settling exact
// payments with flow from the test account settler, channels off (this mode measures exact
// payments), and returns its address.
// With profile set, the gateway writes a CPU profile of its whole run there.
func startPayper(ctx context.Context, bin, dir string, env *chainEnv, upstream string, flow exactFlow, settler int, profile string) (*child, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	keyPath := filepath.Join(dir, "settler.key")
	// A test account of the public test mnemonic: a key that never holds real funds.
	if err := keyfile.Write(keyPath, devkeys.DevAccounts(settler + 1)[settler].Key); err != nil {
		return nil, "", err
	}
	cfg := map[string]any{
		"listen":   "127.0.0.1:0",
		"upstream": upstream,
		"dataDir":  dir,
		"network":  env.network(),
		"rpcURL":   env.rpcURL,
		"asset": map[string]any{
			"address": env.token.Hex(), "name": testusdc.Name, "version": testusdc.EIP712Version, "decimals": testusdc.Decimals,
		},
		"payTo":             devkeys.DevAccounts(payToAccount + 1)[payToAccount].Address.Hex(),
		"settlerKeyFile":    keyPath,
		"maxTimeoutSeconds": exactMaxTimeoutSeconds,
		"routes": []any{
			map[string]any{"method": "GET", "path": quotePath, "price": exactPrice, "description": "A paid quote"},
			map[string]any{"method": "GET", "path": ssePaidPath, "price": exactPrice, "description": "A paid event stream"},
		},
	}
	mergeConfig(cfg, flow.Config)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, "", err
	}
	cfgPath := filepath.Join(dir, "payper.yaml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, "", err
	}
	args := []string{"gateway", "--config", cfgPath, "--log-format", "json", "--log-level", "info"}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	cmd := exec.Command(bin, args...)
	return startChild(ctx, "payper gateway ("+flow.Name+")", cmd, listeningAddr)
}

// listeningAddr reads the gateway's "gateway listening" log line.
func listeningAddr(line string) (string, bool) {
	var rec struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "gateway listening" || rec.Addr == "" {
		return "", false
	}
	return rec.Addr, true
}
