package config

import (
	"strings"
	"testing"

	"github.com/payper/payper/pricing"
)

func TestChecksumAddress(t *testing.T) {
	// Vectors from EIP-55, the USDC contract on Base, and test mnemonic
	// account 0 (a development key).
	for _, addr := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
		"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
		"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
	} {
		if got := checksumAddress(strings.ToLower(addr[2:])); got != addr {
			t.Errorf("checksumAddress = %s, want %s", got, addr)
		}
		if err := checkAddress(addr); err != nil {
			t.Errorf("checkAddress(%s): %v", addr, err)
		}
		if err := checkAddress(strings.ToLower(addr)); err != nil {
			t.Errorf("all lower case: %v", err)
		}
		if err := checkAddress("0x" + strings.ToUpper(addr[2:])); err != nil {
			t.Errorf("all upper case: %v", err)
		}
	}
}

func TestCheckAddressRejects(t *testing.T) {
	for in, text := range map[string]string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD":  "did you mean 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed":    "want 0x followed by 40 hex digits",
		"0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed":  "want 0x",
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe":   "want 0x",
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd": "want 0x",
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg":  "want 0x",
		"0x 5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe":  "want 0x",
		"": "want 0x",
	} {
		err := checkAddress(in)
		if err == nil || !strings.Contains(err.Error(), text) {
			t.Errorf("checkAddress(%q) = %v, want %q", in, err, text)
		}
	}
	if err := checkNonZeroAddress("0x0000000000000000000000000000000000000000"); err == nil {
		t.Error("zero address accepted")
	}
}

func FuzzCheckAddress(f *testing.F) {
	f.Add("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	f.Add("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
	f.Add("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
	f.Add("0x")
	f.Fuzz(func(t *testing.T, s string) {
		if checkAddress(s) != nil {
			return
		}
		// Anything accepted is 0x + 40 hex digits whose checksummed form is
		// accepted too and agrees with it ignoring case.
		cs := checksumAddress(s[2:])
		if len(s) != 42 || !strings.EqualFold(cs, s) || checkAddress(cs) != nil {
			t.Fatalf("accepted %q, checksummed form %q", s, cs)
		}
		if s[2:] != strings.ToLower(s[2:]) && s[2:] != strings.ToUpper(s[2:]) && cs != s {
			t.Fatalf("accepted mixed-case %q with a wrong checksum (want %q)", s, cs)
		}
	})
}

// FuzzParse checks that no input makes the loader panic, and that anything
// it accepts validates again and yields usable pricing rules.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "routes:\n  - path: /v1/**\n    price: \"$0.01\"\n"))
	f.Add([]byte("routes: [{path: /a, price: '1'}, {path: /a, price: '2'}]\n" + minimal))
	f.Add([]byte("{"))
	f.Add([]byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "/base")
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		rules, err := c.PricingRules()
		if err != nil {
			t.Fatalf("accepted config has bad prices: %v", err)
		}
		if _, err := pricing.New(rules); err != nil {
			t.Fatalf("accepted config has bad routes: %v", err)
		}
		if c.ChainID() == nil {
			t.Fatal("accepted config has no chain id")
		}
	})
}
