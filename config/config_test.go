package config

import (
	"errors"
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/money"
	"github.com/payper/payper/pricing"
)

// minimal holds only the required keys.
const minimal = `
upstream: http://127.0.0.1:9000
network: eip155:84532
rpcURL: http://127.0.0.1:8545
asset:
  address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
  name: USDC
  version: "2"
payTo: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
settlerKeyFile: settler.key
`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if c.Listen != want.Listen || c.DataDir != DefaultDataDir || c.Database.Driver != DriverSQLite ||
		c.Database.DSN != filepath.Join(DefaultDataDir, "payper.db") || c.Asset.Decimals != 6 ||
		c.MaxTimeoutSeconds != 60 || c.SettlementTimeout != 30*time.Second || c.Confirmations != 1 ||
		c.MaxPaymentHeaderBytes != 8192 || c.SettlerKeyFile != "settler.key" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got := c.ChainID(); got == nil || got.Int64() != 84532 {
		t.Errorf("ChainID = %v", got)
	}
}

func TestExplicitZeroKept(t *testing.T) {
	c, err := Parse([]byte(minimal+"confirmations: 0\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Confirmations != 0 {
		t.Errorf("confirmations = %d, want the explicit 0", c.Confirmations)
	}
	// A key present with no value keeps its default.
	c, err = Parse([]byte(minimal+"listen:\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen {
		t.Errorf("listen = %q", c.Listen)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		EnvListen:      "127.0.0.1:9999",
		EnvUpstream:    "https://upstream.internal",
		EnvRPCURL:      "wss://rpc.internal/key",
		EnvDatabaseDSN: "relative.db",
		"PAYPER_OTHER": "ignored",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := load([]byte(minimal), "/etc/payper", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != env[EnvListen] || c.Upstream != env[EnvUpstream] || c.RPCURL != env[EnvRPCURL] ||
		c.Database.DSN != "relative.db" {
		t.Errorf("overrides not applied: %+v", c)
	}
	// Empty values do not blank the file's settings, and overrides are
	// validated like the file.
	env = map[string]string{EnvUpstream: "", EnvRPCURL: "ftp://x"}
	_, err = load([]byte(minimal), "", lookup)
	if err == nil || !strings.Contains(err.Error(), "rpcURL: scheme must be http, https, ws or wss") ||
		strings.Contains(err.Error(), "upstream") {
		t.Errorf("error = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "payper.yaml")
	if err := os.WriteFile(file, []byte(minimal+"dataDir: state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvListen, "127.0.0.1:7000")
	t.Setenv(EnvRPCURL, "")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.SettlerKeyFile != filepath.Join(dir, "settler.key") ||
		c.DataDir != filepath.Join(dir, "state") ||
		c.Database.DSN != filepath.Join(dir, "state", "payper.db") {
		t.Errorf("paths not resolved against %s: %+v", dir, c)
	}
	if c.Listen != "127.0.0.1:7000" || c.RPCURL != "http://127.0.0.1:8545" {
		t.Errorf("env not applied as documented: listen %q, rpcURL %q", c.Listen, c.RPCURL)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v", err)
	}
}

func TestSQLiteURIsNotResolved(t *testing.T) {
	for _, dsn := range []string{"file:gw.db?_pragma=busy_timeout(5000)", ":memory:", "/abs/gw.db"} {
		c, err := Parse([]byte(minimal+"database:\n  dsn: \""+dsn+"\"\n"), "/base")
		if err != nil {
			t.Fatal(err)
		}
		if c.Database.DSN != dsn {
			t.Errorf("dsn %q became %q", dsn, c.Database.DSN)
		}
	}
}

func TestPostgres(t *testing.T) {
	for _, dsn := range []string{"postgres://payper:pw@127.0.0.1:5432/payper?sslmode=disable", "postgresql:///payper?host=/run/postgresql"} {
		c, err := Parse([]byte(minimal+"database:\n  driver: postgres\n  dsn: \""+dsn+"\"\n"), "/base")
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if c.Database.DSN != dsn {
			t.Errorf("postgres dsn changed to %q", c.Database.DSN)
		}
	}
}

func TestSecretsNotEchoed(t *testing.T) {
	data, err := os.ReadFile("testdata/bad/postgres-bad-dsn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %q repeats a secret", err)
	}
}

func TestValidateFieldErrors(t *testing.T) {
	c, err := Parse([]byte(minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	c.Routes = []Route{{Method: "*", Path: "/a", Price: "$0.0000001"}}
	c.MaxTimeoutSeconds = 1
	err = c.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v holds no FieldError", err)
	}
	if !errors.Is(err, money.ErrTooFine) {
		t.Errorf("error %v does not wrap money.ErrTooFine", err)
	}
	if got := len(unwrapJoined(err)); got != 2 {
		t.Errorf("got %d errors, want 2: %v", got, err)
	}
}

func TestPricingRules(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.PricingRules()
	if err != nil {
		t.Fatal(err)
	}
	table, err := pricing.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		want         int64
	}{
		{"GET", "/v1/quote", 1000},
		{"DELETE", "/v1/files/a/b", 2500},
		{"POST", "/v1/items/9", 1250000},
		{"GET", "/v1/free/sample", 0},
	} {
		r, err := table.Route(tt.method, tt.path)
		if err != nil || !r.Listed || r.Rule.Price.Int64() != tt.want {
			t.Errorf("%s %s: price %v (matched %v, %v), want %d", tt.method, tt.path, r.Rule.Price, r.Listed, err, tt.want)
		}
	}
	c.Routes[0].Price = "0.5"
	if _, err := c.PricingRules(); err == nil || !strings.HasPrefix(err.Error(), "routes[0].price: ") {
		t.Errorf("PricingRules error = %v", err)
	}
}

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"eip155:1":                          "1",
		"eip155:8453":                       "8453",
		"eip155:31337":                      "31337",
		"eip155:" + strings.Repeat("9", 32): strings.Repeat("9", 32),
	} {
		id, err := parseNetwork(in)
		if err != nil || id.String() != want {
			t.Errorf("parseNetwork(%q) = %v, %v", in, id, err)
		}
	}
	for _, in := range []string{"", "eip155:", "eip155:0", "eip155:01", "eip155:-1", "eip155:0x1",
		"eip155:1 ", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "EIP155:1", "eip155:" + strings.Repeat("9", 33)} {
		if _, err := parseNetwork(in); err == nil {
			t.Errorf("parseNetwork(%q) succeeded", in)
		}
	}
	if (&Config{Network: "bad"}).ChainID() != nil {
		t.Error("ChainID of a bad network is not nil")
	}
}

func TestListen(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8402", ":8402", "[::1]:0", "localhost:65535"} {
		if err := checkListen(ok); err != nil {
			t.Errorf("checkListen(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"8402", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:http", "127.0.0.1:-1", "[::1:80"} {
		if err := checkListen(bad); err == nil {
			t.Errorf("checkListen(%q) succeeded", bad)
		}
	}
}

// TestImports keeps config away from the chain and storage layers.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"gopkg.in/yaml.v3":                 true,
		"golang.org/x/crypto/sha3":         true,
		"github.com/payper/payper/money":   true,
		"github.com/payper/payper/pricing": true,
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && !allowed[imp] {
			t.Errorf("config imports %s", imp)
		}
	}
}

// TestRoutingOptions: routing defaults to case-insensitive matching, no encoded slash, no
// matrix parameters and free unlisted paths; each key maps to the pricing option.
func TestRoutingOptions(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Routing.Unlisted != UnlistedFree || c.PricingRouting() != (pricing.Routing{}) {
		t.Fatalf("defaults: %+v -> %+v", c.Routing, c.PricingRouting())
	}
	c.Routing = Routing{CaseSensitive: true, AllowEncodedSlash: true, AllowMatrixParams: true, Unlisted: UnlistedDeny}
	want := pricing.Routing{CaseSensitive: true, AllowEncodedSlash: true, AllowMatrixParams: true, DenyUnlisted: true}
	if got := c.PricingRouting(); got != want {
		t.Fatalf("PricingRouting = %+v, want %+v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseWei(t *testing.T) {
	good := map[string]string{
		"0": "0", "21000": "21000", "1 wei": "1", "100 gwei": "100000000000", "2.5gwei": "2500000000",
		"0.05 ETH": "50000000000000000", "1 ether": "1000000000000000000", " 3 Gwei ": "3000000000", "1.000 wei": "1",
	}
	for in, want := range good {
		if got, err := ParseWei(in); err != nil || got.String() != want {
			t.Errorf("ParseWei(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "gwei", "-1", "1.5 wei", "0.0000000001 gwei", "1 usd", "1e9", "1..2 gwei", ".5 eth", "5. eth", "1 000"} {
		if got, err := ParseWei(in); err == nil {
			t.Errorf("ParseWei(%q) = %s, want an error", in, got)
		}
	}
}

func FuzzParseWei(f *testing.F) {
	for _, s := range []string{"1", "100 gwei", "0.05 eth", "1.5 wei", "ETHER", "9999999999999999999999 ether"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseWei(s)
		if err != nil {
			return
		}
		if v.Sign() < 0 {
			t.Fatalf("ParseWei(%q) = %s, negative", s, v)
		}
		if again, err := ParseWei(v.String()); err != nil || again.Cmp(v) != 0 {
			t.Fatalf("wei %s does not read back: %v %v", v, again, err)
		}
	})
}

func TestRPCEndpointsMerged(t *testing.T) {
	c := Default()
	c.RPCURL = "https://a.example"
	c.RPCURLs = []string{"https://b.example", "https://a.example", ""}
	if got := c.RPCEndpoints(); len(got) != 2 || got[0] != "https://a.example" || got[1] != "https://b.example" {
		t.Fatalf("endpoints %v", got)
	}
	c.RPCURL = ""
	if got := c.RPCEndpoints(); len(got) != 2 || got[0] != "https://b.example" {
		t.Fatalf("rpcURLs alone: %v", got)
	}
}
