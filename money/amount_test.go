package money

import (
	"errors"
	"go/build"
	"math/big"
	"strings"
	"testing"
)

func mustBig(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("bad test literal %q", s)
	}
	return v
}

const maxUintDecimal = "115792089237316195423570985008687907853269984665640564039457584007913129639935"

func TestParseAmountAccepts(t *testing.T) {
	tests := []struct {
		in       string
		decimals uint8
		want     string
	}{
		{"$0.001", 6, "1000"},
		{"$1", 6, "1000000"},
		{"$1.5", 6, "1500000"},
		{"$0.000001", 6, "1"},
		{"$0.0010000", 6, "1000"}, // trailing zeros add no precision
		{"$0", 6, "0"},
		{"$0.0000000", 6, "0"},
		{"$007.25", 2, "725"},
		{"$12", 0, "12"},
		{"$1", 18, "1000000000000000000"},
		{"1000", 6, "1000"},
		{"0", 6, "0"},
		{"10000", 6, "10000"},
		{maxUintDecimal, 6, maxUintDecimal},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in, tt.decimals)
		if err != nil {
			t.Errorf("ParseAmount(%q, %d): %v", tt.in, tt.decimals, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("ParseAmount(%q, %d) = %s, want %s", tt.in, tt.decimals, got, tt.want)
		}
	}
}

func TestParseAmountRejects(t *testing.T) {
	tests := []struct {
		in       string
		decimals uint8
		is       error
		text     string
	}{
		{"", 6, ErrSyntax, "empty"},
		{"$", 6, ErrSyntax, "want a dollar amount"},
		{"0.5", 6, ErrSyntax, `ambiguous: write "$0.5" for dollars`},
		{"$0.0000001", 6, ErrTooFine, "finer than the asset's smallest unit"},
		{"$0.1", 0, ErrTooFine, "(0 decimals)"},
		{"-1", 6, ErrSyntax, "negative"},
		{"$-1", 6, ErrSyntax, "negative"},
		{"1e6", 6, ErrSyntax, "exponents"},
		{"$1e3", 6, ErrSyntax, "want a dollar amount"},
		{"$1 000", 6, ErrSyntax, "want a dollar amount"},
		{" 1000", 6, ErrSyntax, "want a dollar amount"},
		{"1000 ", 6, ErrSyntax, "want a dollar amount"},
		{"$ 1", 6, ErrSyntax, "want a dollar amount"},
		{"+1", 6, ErrSyntax, "want a dollar amount"},
		{"$+1", 6, ErrSyntax, "want a dollar amount"},
		{"$.5", 6, ErrSyntax, "want a dollar amount"},
		{"$5.", 6, ErrSyntax, "want a dollar amount"},
		{"$1.2.3", 6, ErrSyntax, "want a dollar amount"},
		{"1,000", 6, ErrSyntax, "want a dollar amount"},
		{"$1,000", 6, ErrSyntax, "want a dollar amount"},
		{"0x10", 6, ErrSyntax, "want a dollar amount"},
		{"١٢", 6, ErrSyntax, "want a dollar amount"}, // non-ASCII digits
		{"USD 1", 6, ErrSyntax, "want a dollar amount"},
		{"115792089237316195423570985008687907853269984665640564039457584007913129639936", 6, ErrOutOfRange, "exceeds"},
		{"$115792089237316195423570985008687907853269984665640564039457584007913129639935", 6, ErrOutOfRange, "exceeds"},
		{"$" + strings.Repeat("9", 400), 6, ErrSyntax, "longer than"},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in, tt.decimals)
		if err == nil {
			t.Errorf("ParseAmount(%q, %d) = %s, want error", tt.in, tt.decimals, got)
			continue
		}
		if !errors.Is(err, tt.is) {
			t.Errorf("ParseAmount(%q): error %q does not wrap %v", tt.in, err, tt.is)
		}
		if !strings.Contains(err.Error(), tt.text) {
			t.Errorf("ParseAmount(%q): error %q does not mention %q", tt.in, err, tt.text)
		}
	}
}

func TestParseAtomic(t *testing.T) {
	good := map[string]string{
		"0":            "0",
		"10000":        "10000",
		maxUintDecimal: maxUintDecimal,
		"12345678":     "12345678",
	}
	for in, want := range good {
		got, err := ParseAtomic(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseAtomic(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	bad := map[string]error{
		"":                      ErrSyntax,
		"-1":                    ErrSyntax,
		"+1":                    ErrSyntax,
		"1.0":                   ErrSyntax,
		"1e3":                   ErrSyntax,
		" 1":                    ErrSyntax,
		"1 ":                    ErrSyntax,
		"0x1":                   ErrSyntax,
		"$1":                    ErrSyntax,
		"010000":                ErrSyntax, // one spelling per amount, as on the wire
		"0000":                  ErrSyntax,
		"00":                    ErrSyntax,
		strings.Repeat("0", 79): ErrOutOfRange, // too many digits even though the value is 0
		strings.Repeat("9", 78): ErrOutOfRange,
		"115792089237316195423570985008687907853269984665640564039457584007913129639936": ErrOutOfRange,
	}
	for in, is := range bad {
		got, err := ParseAtomic(in)
		if !errors.Is(err, is) {
			t.Errorf("ParseAtomic(%q) = %v, %v; want error wrapping %v", in, got, err, is)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		amount   string
		decimals uint8
		want     string
	}{
		{"1000", 6, "0.001"},
		{"1", 6, "0.000001"},
		{"1000000", 6, "1"},
		{"1500000", 6, "1.5"},
		{"123456789", 6, "123.456789"},
		{"0", 6, "0"},
		{"0", 0, "0"},
		{"42", 0, "42"},
		{"-1500000", 6, "-1.5"},
		{"1", 255, "0." + strings.Repeat("0", 254) + "1"},
	}
	for _, tt := range tests {
		v := mustBig(t, tt.amount)
		if got := FormatAtomic(v, tt.decimals); got != tt.want {
			t.Errorf("FormatAtomic(%s, %d) = %q, want %q", tt.amount, tt.decimals, got, tt.want)
		}
	}
	if got := FormatDollars(big.NewInt(1000), 6); got != "$0.001" {
		t.Errorf("FormatDollars(1000, 6) = %q", got)
	}
	if got := FormatDollars(big.NewInt(-1000), 6); got != "-$0.001" {
		t.Errorf("FormatDollars(-1000, 6) = %q", got)
	}
	if got := FormatAtomic(nil, 6); got != "0" {
		t.Errorf("FormatAtomic(nil) = %q", got)
	}
	v := big.NewInt(1234)
	FormatAtomic(v, 2)
	if v.Int64() != 1234 {
		t.Errorf("FormatAtomic modified its argument: %s", v)
	}
}

func TestMaxUint256(t *testing.T) {
	m := MaxUint256()
	if m.String() != maxUintDecimal || len(maxUintDecimal) != MaxAtomicDigits {
		t.Fatalf("MaxUint256 = %s", m)
	}
	m.SetInt64(0) // a copy: the package's bound must not change
	if MaxUint256().String() != maxUintDecimal {
		t.Fatal("MaxUint256 returned shared state")
	}
	if !InRange(big.NewInt(0)) || InRange(big.NewInt(-1)) || InRange(nil) ||
		InRange(new(big.Int).Add(MaxUint256(), big.NewInt(1))) || !InRange(MaxUint256()) {
		t.Error("InRange bounds are wrong")
	}
}

// TestImportsStdlibOnly keeps money at the bottom of the dependency graph.
func TestImportsStdlibOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("money imports %s; it may import only the standard library", imp)
		}
	}
}
