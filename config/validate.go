package config

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/payper/payper/money"
	"github.com/payper/payper/pricing"
)

// Bounds that Validate enforces.
const (
	MaxDecimals              = 36
	MinMaxTimeoutSeconds     = 10
	MaxMaxTimeoutSeconds     = 3600
	MinSettlementTimeout     = time.Second
	MaxSettlementTimeout     = time.Hour
	MaxConfirmations         = 256
	MinWithdrawDelay         = 900 // the escrow contract's bounds
	MaxWithdrawDelay         = 2592000
	MinMaxPaymentHeaderBytes = 1024
	MaxMaxPaymentHeaderBytes = 65536
)

// FieldError is a problem with one field, named by its path in the file,
// such as "routes[2].price".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// errRequired is the message for a missing required field.
var errRequired = errors.New("required")

// validator collects every problem instead of stopping at the first.
type validator struct {
	errs []error
}

func (v *validator) fail(field string, err error) {
	v.errs = append(v.errs, &FieldError{Field: field, Err: err})
}

func (v *validator) failf(field, format string, args ...any) {
	v.fail(field, fmt.Errorf(format, args...))
}

// check runs fn on a required value, reporting it as missing when empty.
func (v *validator) check(field, value string, fn func(string) error) {
	if value == "" {
		v.fail(field, errRequired)
		return
	}
	if fn == nil {
		return
	}
	if err := fn(value); err != nil {
		v.fail(field, err)
	}
}

func (v *validator) between(field string, value, lo, hi int) {
	if value < lo || value > hi {
		v.failf(field, "%d is outside %d..%d", value, lo, hi)
	}
}

// Validate reports every problem with c at once, joined with errors.Join.
// Each is a *FieldError naming the field.
func (c *Config) Validate() error {
	var v validator
	v.check("listen", c.Listen, checkListen)
	v.check("upstream", c.Upstream, checkUpstream)
	v.check("dataDir", c.DataDir, nil)
	c.validateDatabase(&v)
	v.check("network", c.Network, func(s string) error { _, err := parseNetwork(s); return err })
	c.validateChainAccess(&v)
	v.check("asset.address", c.Asset.Address, checkNonZeroAddress)
	v.check("asset.name", c.Asset.Name, nil)
	v.check("asset.version", c.Asset.Version, nil)
	if c.Asset.Decimals > MaxDecimals {
		v.failf("asset.decimals", "%d is more than %d", c.Asset.Decimals, MaxDecimals)
	}
	v.check("payTo", c.PayTo, checkNonZeroAddress)
	v.check("settlerKeyFile", c.SettlerKeyFile, nil)
	v.between("maxTimeoutSeconds", c.MaxTimeoutSeconds, MinMaxTimeoutSeconds, MaxMaxTimeoutSeconds)
	if c.SettlementTimeout < MinSettlementTimeout || c.SettlementTimeout > MaxSettlementTimeout {
		v.failf("settlementTimeout", "%s is outside %s..%s", c.SettlementTimeout, MinSettlementTimeout, MaxSettlementTimeout)
	}
	v.between("confirmations", c.Confirmations, 0, MaxConfirmations)
	v.between("maxPaymentHeaderBytes", c.MaxPaymentHeaderBytes, MinMaxPaymentHeaderBytes, MaxMaxPaymentHeaderBytes)
	c.validateIdempotency(&v)
	if c.Channels.Enabled {
		if c.Channels.WithdrawDelay < MinWithdrawDelay || c.Channels.WithdrawDelay > MaxWithdrawDelay {
			v.failf("channels.withdrawDelay", "%d is outside %d..%d seconds", c.Channels.WithdrawDelay, MinWithdrawDelay, MaxWithdrawDelay)
		}
		if c.Channels.ClaimInterval < time.Second || c.Channels.ClaimInterval > 24*time.Hour {
			v.failf("channels.claimInterval", "%s is outside 1s..24h", c.Channels.ClaimInterval)
		}
		if _, err := c.ChannelClaimMinValue(); err != nil {
			v.failf("channels.claimMinValue", "%v", err)
		}
		if _, err := c.ChannelMinDeposit(); err != nil {
			v.failf("channels.minDeposit", "%v", err)
		}
	}
	if c.Routing.Unlisted != UnlistedFree && c.Routing.Unlisted != UnlistedDeny {
		v.failf("routing.unlisted", "%q is not %q or %q", c.Routing.Unlisted, UnlistedFree, UnlistedDeny)
	}
	c.validateRoutes(&v)
	c.validateFlows(&v)
	c.validateResilience(&v)
	return errors.Join(v.errs...)
}

func (c *Config) validateDatabase(v *validator) {
	switch c.Database.Driver {
	case DriverSQLite:
		v.check("database.dsn", c.Database.DSN, nil)
	case DriverPostgres:
		v.check("database.dsn", c.Database.DSN, checkPostgresDSN)
	default:
		v.failf("database.driver", "%q is not %q or %q", c.Database.Driver, DriverSQLite, DriverPostgres)
	}
}

// validateRoutes checks each route's price, then lets pricing judge the
// method, path and the table as a whole (for example, routes that can never
// match). Problems are reported in route order.
func (c *Config) validateRoutes(v *validator) {
	type routeErr struct {
		index, order int
		err          *FieldError
	}
	var errs []routeErr
	fail := func(index int, field string, err error) {
		name := fmt.Sprintf("routes[%d]", index)
		if field != "" {
			name += "." + field
		}
		order := map[string]int{"method": 0, "path": 1, "price": 2}[field]
		if field == "" {
			order = 3
		}
		errs = append(errs, routeErr{index, order, &FieldError{Field: name, Err: err}})
	}
	rules := make([]pricing.Rule, len(c.Routes))
	for i, r := range c.Routes {
		rules[i] = pricing.Rule{Method: r.Method, Path: r.Path, Price: new(big.Int), Description: r.Description}
		if r.Path == "" {
			fail(i, "path", errRequired)
		}
		if r.Price == "" {
			fail(i, "price", errRequired)
			continue
		}
		price, err := money.ParseAmount(r.Price, c.Asset.Decimals)
		if err != nil {
			fail(i, "price", err)
			continue
		}
		rules[i].Price = price
	}
	// The routing options decide which rules overlap (/v1/Quote after /v1/quote is unreachable
	// when paths match in any case).
	if _, err := pricing.NewWithRouting(rules, c.PricingRouting()); err != nil {
		for _, e := range unwrapJoined(err) {
			var re *pricing.RuleError
			switch {
			case !errors.As(e, &re):
				v.fail("routes", e)
			case re.Field == "path" && c.Routes[re.Index].Path == "":
				// already reported as required
			default:
				fail(re.Index, re.Field, re.Err)
			}
		}
	}
	sort.SliceStable(errs, func(a, b int) bool {
		if errs[a].index != errs[b].index {
			return errs[a].index < errs[b].index
		}
		return errs[a].order < errs[b].order
	})
	for _, e := range errs {
		v.errs = append(v.errs, e.err)
	}
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example 127.0.0.1:8402)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%q has an invalid port", s)
	}
	return nil
}

// checkURL parses a URL without repeating it in errors (it may hold secrets).
func checkURL(s string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	ok := false
	for _, scheme := range schemes {
		ok = ok || u.Scheme == scheme
	}
	if !ok {
		return nil, fmt.Errorf("scheme must be %s", orList(schemes))
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	if u.Fragment != "" {
		return nil, errors.New("URL must not have a fragment")
	}
	return u, nil
}

func checkUpstream(s string) error {
	u, err := checkURL(s, "http", "https")
	if err != nil {
		return err
	}
	if u.User != nil {
		return errors.New("URL must not hold credentials")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("URL must not have a query")
	}
	return nil
}

func checkRPCURL(s string) error {
	_, err := checkURL(s, "http", "https", "ws", "wss")
	return err
}

// checkPostgresDSN accepts postgres:// URLs, including host-less ones that
// name a Unix socket in their query.
func checkPostgresDSN(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return errors.New("must be a postgres:// or postgresql:// URL")
	}
	return nil
}

func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// parseNetwork reads a CAIP-2 EVM network, "eip155:<chain id>", where the chain
// id is a positive decimal without leading zeros (CAIP-2 allows at most 32
// characters).
func parseNetwork(s string) (*big.Int, error) {
	ref, ok := strings.CutPrefix(s, "eip155:")
	if !ok {
		return nil, fmt.Errorf("%q is not an EVM network; want eip155:<chain id>, for example eip155:8453", s)
	}
	if ref == "" || len(ref) > 32 || ref[0] == '0' || strings.Trim(ref, "0123456789") != "" {
		return nil, fmt.Errorf("%q: the chain id must be a positive decimal number without leading zeros", s)
	}
	id, _ := new(big.Int).SetString(ref, 10)
	return id, nil
}
