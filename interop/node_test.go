package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/devkeys"
)

// nodeRunLimit bounds one run of a stock script so a hung peer fails the test instead of hanging
// it; it is a safety net, not an assertion on speed.
const nodeRunLimit = 3 * time.Minute

// stockPackages must be installed in interop/node_modules for the scripts to run.
var stockPackages = []string{"@x402/fetch", "@x402/core", "@x402/evm", "@x402/express", "@x402/extensions", "viem", "express"}

// managedEnv are the variables the scripts read; inherited values are dropped so a developer's
// shell cannot change what a test sends.
var managedEnv = []string{"URL", "PRIVATE_KEY", "NETWORK", "ASSET", "MAX_AMOUNT", "METHOD", "BODY", "PAYMENT_ID",
	"RPC_URL", "CHAIN_ID", "FACILITATOR_KEY", "ASSET_NAME", "ASSET_VERSION", "PRICE", "PAY_TO", "PORT"}

// nodeBinary finds node and the installed packages. Missing either fails the test: the interop
// checks are part of the suite, and skipping would hide that they never ran.
func nodeBinary(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): install Node.js 20 or later, then run npm ci in interop/", err)
	}
	for _, pkg := range stockPackages {
		manifest := filepath.Join("node_modules", filepath.FromSlash(pkg), "package.json")
		if _, err := os.Stat(manifest); err != nil {
			t.Fatalf("interop/node_modules lacks %s (%v): run npm ci in interop/", pkg, err)
		}
	}
	return node
}

// scriptEnv is the test process's environment without the managed variables, plus vars.
func scriptEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		managed := false
		for _, m := range managedEnv {
			if name == m {
				managed = true
				break
			}
		}
		if !managed {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

func keyHex(a devkeys.Account) string { return "0x" + hex.EncodeToString(crypto.FromECDSA(a.Key)) }

// stockResult is the line pay.mjs prints.
type stockResult struct {
	Status          int              `json:"status"`
	Body            string           `json:"body"`
	PaymentResponse *stockSettlement `json:"paymentResponse"`
}

// stockSettlement is PAYMENT-RESPONSE as the npm package decoded it. It is declared here rather
// than reusing Payper's type so the test reads the peer's view, not ours.
type stockSettlement struct {
	Success     bool   `json:"success"`
	Transaction string `json:"transaction"`
	Network     string `json:"network"`
	Payer       string `json:"payer"`
	ErrorReason string `json:"errorReason"`
}

// runStockClient runs pay.mjs once and decodes its output.
func runStockClient(ctx context.Context, t *testing.T, vars map[string]string) stockResult {
	t.Helper()
	node := nodeBinary(t)
	ctx, cancel := context.WithTimeout(ctx, nodeRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "pay.mjs")
	cmd.Env = scriptEnv(vars)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pay.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var res stockResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("pay.mjs printed %q: %v (stderr: %s)", stdout.String(), err, stderr.String())
	}
	return res
}

// syncBuffer collects a child's stderr while the child still writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startStockServer runs server.mjs until the test ends and returns its base URL.
func startStockServer(ctx context.Context, t *testing.T, vars map[string]string) string {
	t.Helper()
	node := nodeBinary(t)
	cmd := exec.Command(node, "server.mjs")
	cmd.Env = scriptEnv(vars)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server.mjs: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	ready := make(chan string, 1)
	go func() {
		defer close(ready)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if port, ok := strings.CutPrefix(lines.Text(), "LISTENING "); ok {
				ready <- port
				break
			}
		}
		// Keep draining so the child never blocks on a full pipe.
		for lines.Scan() {
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, nodeRunLimit)
	defer cancel()
	select {
	case port, ok := <-ready:
		if !ok {
			t.Fatalf("server.mjs exited before listening:\n%s", stderr.String())
		}
		return fmt.Sprintf("http://127.0.0.1:%s", port)
	case <-ctx.Done():
		t.Fatalf("server.mjs never printed LISTENING: %v\n%s", ctx.Err(), stderr.String())
		return ""
	}
}
