package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/sha3"
)

// checkAddress validates an EVM address: "0x" and 40 hex digits. Mixed-case
// addresses carry an EIP-55 checksum, which must be right; all-lower and
// all-upper addresses carry none.
func checkAddress(s string) error {
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok || len(digits) != 40 {
		return fmt.Errorf("%q is not an address: want 0x followed by 40 hex digits", s)
	}
	if _, err := hex.DecodeString(digits); err != nil {
		return fmt.Errorf("%q is not an address: want 0x followed by 40 hex digits", s)
	}
	if digits == strings.ToLower(digits) || digits == strings.ToUpper(digits) {
		return nil
	}
	if want := checksumAddress(digits); want != s {
		return fmt.Errorf("%q has a wrong EIP-55 checksum (did you mean %s?)", s, want)
	}
	return nil
}

func checkNonZeroAddress(s string) error {
	if err := checkAddress(s); err != nil {
		return err
	}
	if strings.Trim(s[2:], "0") == "" {
		return errors.New("must not be the zero address")
	}
	return nil
}

// checksumAddress returns the EIP-55 form of 40 hex digits: a letter is upper
// case when the matching nibble of keccak256(lower-case hex) is 8 or more.
func checksumAddress(digits string) string {
	lower := strings.ToLower(digits)
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	out := []byte("0x" + lower)
	for i := 0; i < len(lower); i++ {
		nibble := sum[i/2] >> 4
		if i%2 == 1 {
			nibble = sum[i/2] & 0x0f
		}
		if c := lower[i]; c >= 'a' && c <= 'f' && nibble >= 8 {
			out[2+i] = c - 'a' + 'A'
		}
	}
	return string(out)
}
