package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payper/payper/money"
	"github.com/payper/payper/pricing"
)

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Environment variables that override the file in Load.
const (
	EnvListen      = "PAYPER_LISTEN"
	EnvUpstream    = "PAYPER_UPSTREAM"
	EnvRPCURL      = "PAYPER_RPC_URL"
	EnvDatabaseDSN = "PAYPER_DATABASE_DSN"
)

// Defaults for keys the file leaves out.
const (
	DefaultListen                = "127.0.0.1:8402"
	DefaultDataDir               = "./payper-data"
	DefaultDatabaseFile          = "payper.db" // inside DataDir
	DefaultDecimals              = 6
	DefaultMaxTimeoutSeconds     = 60
	DefaultSettlementTimeout     = 30 * time.Second
	DefaultConfirmations         = 1
	DefaultMaxPaymentHeaderBytes = 8192
	DefaultWithdrawDelay         = 900
	DefaultClaimInterval         = time.Minute
	DefaultUnlisted              = UnlistedFree
)

// What Routing.Unlisted may say happens to a request no route matches.
const (
	UnlistedFree = "free" // forwarded to the upstream without payment
	UnlistedDeny = "deny" // answered 404, never forwarded
)

// Config is the gateway's configuration.
type Config struct {
	// Listen is the host:port the gateway serves on.
	Listen string `yaml:"listen"`
	// Upstream is the http(s) URL of the service being sold.
	Upstream string `yaml:"upstream"`
	// DataDir holds the gateway's files (the SQLite database by default).
	DataDir  string   `yaml:"dataDir"`
	Database Database `yaml:"database"`
	// Network is the CAIP-2 chain identifier, "eip155:<chain id>".
	Network string `yaml:"network"`
	// RPCURL is the chain node's http(s) or ws(s) endpoint. It may embed an
	// API key, so error messages never repeat it.
	RPCURL string `yaml:"rpcURL"`
	// RPCURLs are more endpoints of the same chain, tried after RPCURL:
	// reads and sends fail over between them.
	RPCURLs []string `yaml:"rpcURLs,omitempty"`
	Asset   Asset    `yaml:"asset"`
	// PayTo is the address that receives payments.
	PayTo string `yaml:"payTo"`
	// SettlerKeyFile names a file holding the 0x-hex private key that pays
	// gas for settlements. The file is read when the key is loaded, not here.
	SettlerKeyFile string `yaml:"settlerKeyFile"`
	// MaxTimeoutSeconds is how long a payment authorization stays valid.
	MaxTimeoutSeconds int `yaml:"maxTimeoutSeconds"`
	// SettlementTimeout is how long to wait for a settlement receipt.
	SettlementTimeout time.Duration `yaml:"settlementTimeout"`
	// Confirmations is how deep a settlement must be before it counts, its own block
	// included: 1 (or 0) trusts the receipt, 12 waits for 11 blocks after it.
	Confirmations int `yaml:"confirmations"`
	// Idempotency configures the x402 payment-identifier extension (idempotency.go).
	Idempotency Idempotency `yaml:"idempotency"`
	// MaxPaymentHeaderBytes bounds the payment header the gateway will decode.
	MaxPaymentHeaderBytes int      `yaml:"maxPaymentHeaderBytes"`
	Channels              Channels `yaml:"channels"`
	Routing               Routing  `yaml:"routing"`
	Routes                []Route  `yaml:"routes"`
	// Server, UpstreamTimeouts, UpstreamBreaker and Settlement bound connections, the upstream
	// and settlements (resilience.go, settlement.go).
	Server           Server           `yaml:"server"`
	UpstreamTimeouts UpstreamTimeouts `yaml:"upstreamTimeouts"`
	UpstreamBreaker  UpstreamBreaker  `yaml:"upstreamBreaker"`
	Settlement       Settlement       `yaml:"settlement"`
}

// Routing says how request paths are matched to routes; see package pricing. The defaults
// price every spelling an upstream could read as a priced route and refuse ambiguous ones.
type Routing struct {
	// CaseSensitive matches paths in their exact letter case. Off by default: upstreams such
	// as Express and ASP.NET serve /V1/QUOTE as /v1/quote.
	CaseSensitive bool `yaml:"caseSensitive"`
	// AllowEncodedSlash accepts %2F in paths (refused with 400 by default), for upstreams that
	// keep it inside a segment.
	AllowEncodedSlash bool `yaml:"allowEncodedSlash"`
	// AllowMatrixParams accepts ";params" in path segments (refused with 400 by default), for
	// upstreams that take matrix parameters.
	AllowMatrixParams bool `yaml:"allowMatrixParams"`
	// Unlisted is UnlistedFree (the default: a path no route matches passes free) or
	// UnlistedDeny (it gets 404).
	Unlisted string `yaml:"unlisted"`
}

// Channels configures x402 batch-settlement escrow channels, offered next to exact payments.
// The settler key is the channels' receiver authorizer: it signs claims and refunds.
type Channels struct {
	Enabled bool `yaml:"enabled"`
	// WithdrawDelay is how long, in seconds, a payer's withdrawal waits so that pending
	// vouchers can be claimed first (900..2592000, default 900).
	WithdrawDelay uint64 `yaml:"withdrawDelay"`
	// MinDeposit is the smallest deposit announced, "$1" or atomic units; empty means ten
	// times the route's price.
	MinDeposit string `yaml:"minDeposit"`
	// EnforceMinDeposit refuses deposits below the announced minimum instead of only announcing
	// it. The gateway pays every deposit's gas, so this stops a payer from topping up by dust.
	// Off by default, as in the reference server.
	EnforceMinDeposit bool `yaml:"enforceMinDeposit"`
	// ClaimInterval is how often charged vouchers are claimed and paid out (default 1m).
	ClaimInterval time.Duration `yaml:"claimInterval"`
	// ClaimMinValue skips a claim round worth less than this ("$0.50" or atomic units), so gas
	// is not spent on dust; a pending withdrawal is claimed whatever the value. Empty: no minimum.
	ClaimMinValue string `yaml:"claimMinValue"`
}

// Database selects the store.
type Database struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string `yaml:"driver"`
	// DSN is a file path for SQLite (default <dataDir>/payper.db) or a
	// postgres:// URL. A PostgreSQL DSN may hold a password, so error
	// messages never repeat it.
	DSN string `yaml:"dsn"`
}

// Asset is the ERC-20 token (with EIP-3009) that payments are made in.
type Asset struct {
	Address string `yaml:"address"`
	// Name and Version are the token's EIP-712 domain name and version.
	Name     string `yaml:"name"`
	Version  string `yaml:"version"`
	Decimals uint8  `yaml:"decimals"`
}

// Route prices requests; see package pricing for the matching rules.
type Route struct {
	// Method is an HTTP method, or "*" (the default) for any.
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
	// Price is a dollar amount such as "$0.001" or an integer number of
	// atomic units such as "1000".
	Price       string `yaml:"price"`
	Description string `yaml:"description"`
	// Timeouts override upstreamTimeouts for this route, field by field.
	Timeouts UpstreamTimeouts `yaml:"timeouts,omitempty"`
}

// Default returns a Config holding every default value; the required fields
// are empty.
func Default() *Config {
	return &Config{
		Listen:                DefaultListen,
		DataDir:               DefaultDataDir,
		Database:              Database{Driver: DriverSQLite},
		Asset:                 Asset{Decimals: DefaultDecimals},
		MaxTimeoutSeconds:     DefaultMaxTimeoutSeconds,
		SettlementTimeout:     DefaultSettlementTimeout,
		Confirmations:         DefaultConfirmations,
		Idempotency:           Idempotency{TTL: DefaultIdempotencyTTL, MaxResponseBytes: DefaultIdempotencyMaxBytes},
		MaxPaymentHeaderBytes: DefaultMaxPaymentHeaderBytes,
		Channels:              Channels{WithdrawDelay: DefaultWithdrawDelay, ClaimInterval: DefaultClaimInterval},
		Server:                defaultServer(),
		UpstreamTimeouts:      defaultUpstreamTimeouts(),
		UpstreamBreaker:       defaultUpstreamBreaker(),
		Settlement: Settlement{InclusionMargin: DefaultInclusionMargin, ReplaceAfter: DefaultReplaceAfter,
			MaxFeePerGas: DefaultMaxFeePerGas, BatchMax: DefaultBatchMax, BatchWindow: DefaultBatchWindow},
		Routing: Routing{Unlisted: DefaultUnlisted},
	}
}

// Load reads the file at path, applies environment overrides and validates
// the result. Relative paths in the file are resolved against the file's
// directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return load(data, filepath.Dir(abs), os.LookupEnv)
}

// Parse decodes and validates a configuration held in memory, without
// environment overrides. Relative paths are resolved against baseDir; an
// empty baseDir leaves them as written.
func Parse(data []byte, baseDir string) (*Config, error) {
	return load(data, baseDir, nil)
}

func load(data []byte, baseDir string, lookupEnv func(string) (string, bool)) (*Config, error) {
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	c.resolvePaths(baseDir)
	if lookupEnv != nil {
		c.applyEnv(lookupEnv)
	}
	c.applyDerivedDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func decode(data []byte) (*Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, describeYAMLError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: the file must hold exactly one YAML document")
	}
	return c, nil
}

var unknownField = regexp.MustCompile(`^(line \d+): field (.+) not found in type \S+$`)

// describeYAMLError rewrites the YAML library's messages into one line per
// problem, naming unknown keys plainly rather than by Go type.
func describeYAMLError(err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return fmt.Errorf("config: %w", err)
	}
	errs := make([]error, 0, len(typeErr.Errors))
	for _, msg := range typeErr.Errors {
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("%s: unknown key %q", m[1], m[2])
		}
		errs = append(errs, errors.New("config: "+msg))
	}
	return errors.Join(errs...)
}

func (c *Config) resolvePaths(baseDir string) {
	if baseDir == "" {
		return
	}
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(baseDir, p)
	}
	c.DataDir = resolve(c.DataDir)
	c.SettlerKeyFile = resolve(c.SettlerKeyFile)
	if c.Database.Driver == DriverSQLite && isSQLitePath(c.Database.DSN) {
		c.Database.DSN = resolve(c.Database.DSN)
	}
}

// isSQLitePath reports whether a SQLite DSN is a plain file path rather than
// a "file:" URI or an in-memory database.
func isSQLitePath(dsn string) bool {
	return !strings.HasPrefix(dsn, "file:") && dsn != ":memory:"
}

func (c *Config) applyEnv(lookupEnv func(string) (string, bool)) {
	for name, field := range map[string]*string{
		EnvListen:      &c.Listen,
		EnvUpstream:    &c.Upstream,
		EnvRPCURL:      &c.RPCURL,
		EnvDatabaseDSN: &c.Database.DSN,
	} {
		if v, ok := lookupEnv(name); ok && v != "" {
			*field = v
		}
	}
}

func (c *Config) applyDerivedDefaults() {
	if c.Database.Driver == DriverSQLite && c.Database.DSN == "" && c.DataDir != "" {
		c.Database.DSN = filepath.Join(c.DataDir, DefaultDatabaseFile)
	}
	for i := range c.Routes {
		// Methods compare case-insensitively; upper case reads as intended.
		c.Routes[i].Method = strings.ToUpper(c.Routes[i].Method)
		if c.Routes[i].Method == "" {
			c.Routes[i].Method = pricing.AnyMethod
		}
	}
}

// ChainID returns the chain ID from Network, or nil if Network is not a valid
// "eip155:<chain id>".
func (c *Config) ChainID() *big.Int {
	id, err := parseNetwork(c.Network)
	if err != nil {
		return nil
	}
	return id
}

// PricingRules converts Routes into pricing rules, with prices in atomic
// units of the asset.
func (c *Config) PricingRules() ([]pricing.Rule, error) {
	rules := make([]pricing.Rule, len(c.Routes))
	var errs []error
	for i, r := range c.Routes {
		price, err := money.ParseAmount(r.Price, c.Asset.Decimals)
		if err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("routes[%d].price", i), Err: err})
			continue
		}
		rules[i] = pricing.Rule{Method: r.Method, Path: r.Path, Price: price, Description: r.Description}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rules, nil
}

// PricingRouting converts Routing into the pricing package's options.
func (c *Config) PricingRouting() pricing.Routing {
	return pricing.Routing{
		CaseSensitive:     c.Routing.CaseSensitive,
		AllowEncodedSlash: c.Routing.AllowEncodedSlash,
		AllowMatrixParams: c.Routing.AllowMatrixParams,
		DenyUnlisted:      c.Routing.Unlisted == UnlistedDeny,
	}
}

// ChannelClaimMinValue returns channels.claimMinValue in atomic units, or nil when it is not set.
func (c *Config) ChannelClaimMinValue() (*big.Int, error) {
	if c.Channels.ClaimMinValue == "" {
		return nil, nil
	}
	return money.ParseAmount(c.Channels.ClaimMinValue, c.Asset.Decimals)
}

// ChannelMinDeposit returns channels.minDeposit in atomic units, or nil when it is not set.
func (c *Config) ChannelMinDeposit() (*big.Int, error) {
	if c.Channels.MinDeposit == "" {
		return nil, nil
	}
	return money.ParseAmount(c.Channels.MinDeposit, c.Asset.Decimals)
}
