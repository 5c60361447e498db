package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/payper/payper/money"
)

// AnyMethod is the method wildcard; an empty Method means the same.
const AnyMethod = "*"

// ErrInvalidRule reports a rule that cannot be used: a bad pattern, method or price.
var ErrInvalidRule = errors.New("invalid pricing rule")

// Rule prices the requests that match a method and a path pattern.
type Rule struct {
	// Method is an HTTP method such as "GET", or "*" or "" for any method.
	Method string
	// Path is a pattern as described in the package documentation.
	Path string
	// Price is the amount in the asset's atomic units; zero means free.
	Price *big.Int
	// Description says what the payment buys; it is shown to payers.
	Description string
}

// Table is an immutable, ordered set of rules and the way request paths are read, safe for
// concurrent use.
type Table struct {
	rules   []compiledRule
	routing Routing
}

type compiledRule struct {
	rule    Rule
	method  string // upper case; "" means any
	pattern pattern
}

// RuleError describes what is wrong with one rule given to New. Errors from
// New are RuleErrors joined with errors.Join; each matches ErrInvalidRule
// with errors.Is.
type RuleError struct {
	// Index is the rule's position in the slice given to New.
	Index int
	// Field is "method", "path" or "price", or "" when the rule as a whole is
	// at fault (for example, it is unreachable).
	Field string
	Err   error
}

func (e *RuleError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("pricing rule %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("pricing rule %d: %s: %v", e.Index, e.Field, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// Is makes every RuleError match ErrInvalidRule.
func (e *RuleError) Is(target error) bool { return target == ErrInvalidRule }

// New is NewWithRouting with the default Routing: case-insensitive matching, no encoded slash,
// no matrix parameters, unlisted paths free.
func New(rules []Rule) (*Table, error) {
	return NewWithRouting(rules, Routing{})
}

// NewWithRouting validates rules and returns a table that matches them in order and reads
// request paths as routing says. It reports every problem at once, including rules that can
// never match because an earlier rule matches every request they would.
func NewWithRouting(rules []Rule, routing Routing) (*Table, error) {
	t := &Table{rules: make([]compiledRule, 0, len(rules)), routing: routing}
	var errs []error
	compiled := make([]*compiledRule, len(rules))
	for i, r := range rules {
		c, ruleErrs := compile(i, r)
		if len(ruleErrs) > 0 {
			errs = append(errs, ruleErrs...)
			continue
		}
		compiled[i] = &c
		t.rules = append(t.rules, c)
	}
	for i, later := range compiled {
		for j, earlier := range compiled[:i] {
			if later == nil || earlier == nil || !earlier.covers(later, !routing.CaseSensitive) {
				continue
			}
			errs = append(errs, &RuleError{Index: i, Err: fmt.Errorf(
				"unreachable: the rule at index %d (%s %s) matches every request this one would",
				j, displayMethod(earlier.rule.Method), earlier.rule.Path)})
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func compile(index int, r Rule) (compiledRule, []error) {
	var errs []error
	fail := func(field string, err error) {
		errs = append(errs, &RuleError{Index: index, Field: field, Err: err})
	}
	if err := ValidateMethod(r.Method); err != nil {
		fail("method", err)
	}
	p, err := parsePattern(r.Path)
	if err != nil {
		fail("path", err)
	}
	switch {
	case r.Price == nil:
		fail("price", errors.New("missing"))
	case !money.InRange(r.Price):
		fail("price", fmt.Errorf("%s is outside [0, 2^256-1]", r.Price))
	}
	if len(errs) > 0 {
		return compiledRule{}, errs
	}
	r.Price = new(big.Int).Set(r.Price) // later changes by the caller must not reach the table
	method := strings.ToUpper(r.Method)
	if method == AnyMethod {
		method = ""
	}
	return compiledRule{rule: r, method: method, pattern: p}, nil
}

// covers reports whether c matches every request that later matches.
func (c *compiledRule) covers(later *compiledRule, fold bool) bool {
	methodCovered := c.method == "" || c.method == later.method ||
		(c.method == "GET" && later.method == "HEAD")
	return methodCovered && c.pattern.covers(later.pattern, fold)
}

func displayMethod(m string) string {
	if m == "" {
		return AnyMethod
	}
	return m
}

// Rules returns copies of the table's rules in matching order.
func (t *Table) Rules() []Rule {
	if t == nil {
		return nil
	}
	out := make([]Rule, len(t.rules))
	for i, c := range t.rules {
		out[i] = c.rule
		out[i].Price = new(big.Int).Set(c.rule.Price)
	}
	return out
}

func methodMatches(ruleMethod, reqMethod string) bool {
	return ruleMethod == "" || ruleMethod == reqMethod || (ruleMethod == "GET" && reqMethod == "HEAD")
}

// ValidateMethod checks a rule's method: "", "*" or an HTTP method token
// (RFC 9110), compared case-insensitively.
func ValidateMethod(method string) error {
	if method == "" || method == AnyMethod {
		return nil
	}
	if len(method) > 32 {
		return errors.New("method is longer than 32 characters")
	}
	for i := 0; i < len(method); i++ {
		if !isTokenChar(method[i]) {
			return fmt.Errorf("method %q is not an HTTP method token", method)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
