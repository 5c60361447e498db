package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/internal/devtest"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestGatewayFromConfigFile runs the gateway the way a provider does — a YAML file, a settler key
// file, an RPC URL — in front of an API, and pays it with `payper pay`.
func TestGatewayFromConfigFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := devtest.Start(t, app.DevOptions{})
	dev := env.Dev
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "report for %s", r.Header.Get("X-Payper-Payer"))
	}))
	defer api.Close()

	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"keys", "new", "--out", filepath.Join(dir, "unused.key")}, &out, &errOut); err != nil {
		t.Fatalf("keys new: %v %s", err, errOut.String())
	}
	if !common.IsHexAddress(strings.TrimSpace(out.String())) {
		t.Fatalf("keys new printed %q", out.String())
	}
	// The settler pays gas, so it must be funded: test account 4 of the public test mnemonic.
	settler := devkeys.DevAccounts(5)[4]
	os.WriteFile(filepath.Join(dir, "settler.key"), []byte(fmt.Sprintf("0x%x\n", settler.Key.D.FillBytes(make([]byte, 32)))), 0o600)
	listen := freeAddr(t)
	payTo := "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
	yaml := fmt.Sprintf(`listen: %s
upstream: %s
network: eip155:1337
rpcURL: %s
asset: {address: "%s", name: USD Coin, version: "2", decimals: 6}
payTo: "%s"
settlerKeyFile: settler.key
routes:
  - {method: GET, path: /reports/**, price: "$0.25", description: Reports}
`, listen, api.URL, dev.Info.RPCURL, dev.Info.Asset.Address, payTo)
	cfgPath := filepath.Join(dir, "payper.yaml")
	os.WriteFile(cfgPath, []byte(yaml), 0o600)

	out.Reset()
	if err := run(ctx, []string{"config", "validate", cfgPath}, &out, &errOut); err != nil || !strings.Contains(out.String(), "$0.25") {
		t.Fatalf("config validate: %v\n%s", err, out.String())
	}
	gwDone := make(chan error, 1)
	go func() {
		gwDone <- run(ctx, []string{"gateway", "--config", cfgPath, "--log-level", "warn"}, io.Discard, io.Discard)
	}()
	waitListening(t, listen)

	before := env.Balance(common.HexToAddress(payTo))

	url := "http://" + listen + "/reports/2026/q3"
	out.Reset()
	errOut.Reset()
	err := run(ctx, []string{"pay", "--dev-account", "6", "--max", "$0.10", url}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "above the maximum") {
		t.Fatalf("a price above --max must be refused: %v", err)
	}
	out.Reset()
	errOut.Reset()
	if err := run(ctx, []string{"pay", "--dev-account", "6", "--max", "$0.25", "-i", url}, &out, &errOut); err != nil {
		t.Fatalf("pay: %v\n%s", err, errOut.String())
	}
	payer := devkeys.DevAccounts(7)[6].Address.Hex()
	if !strings.Contains(out.String(), "200 OK") || !strings.Contains(out.String(), "report for "+payer) {
		t.Fatalf("stdout:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "paid $0.25 (250000 atomic) from "+payer) || !strings.Contains(errOut.String(), "tx 0x") {
		t.Fatalf("stderr:\n%s", errOut.String())
	}
	after := env.Balance(common.HexToAddress(payTo))
	if got := new(big.Int).Sub(after, before); got.Cmp(big.NewInt(250_000)) != 0 {
		t.Fatalf("payTo received %s, want 250000", got)
	}
	cancel()
	select {
	case err := <-gwDone:
		if err != nil {
			t.Fatalf("gateway exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not shut down")
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{nil, {"nope"}, {"pay"}, {"keys"}, {"config", "validate"}} {
		if err := run(context.Background(), args, &out, &errOut); err != errUsage {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	if err := run(context.Background(), []string{"config", "validate", "/does/not/exist.yaml"}, &out, &errOut); err == nil {
		t.Error("validating a missing file must fail")
	}
}
