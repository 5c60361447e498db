package sqlstore

import (
	"fmt"
	"strings"

	"github.com/payper/payper/store"
)

// maxAmountBits bounds amounts to uint256, the EVM word size.
const maxAmountBits = 256

// normalizePayment checks the fields the store depends on and returns a
// copy with hex fields lowercased and ValidBefore in UTC microseconds.
func normalizePayment(p *store.Payment) (store.Payment, error) {
	if p == nil {
		return store.Payment{}, fmt.Errorf("%w: nil payment", store.ErrInvalid)
	}
	n := *p
	n.Asset = normalizeHex(n.Asset)
	n.Payer = normalizeHex(n.Payer)
	n.PayTo = normalizeHex(n.PayTo)
	n.Nonce = normalizeHex(n.Nonce)
	n.ValidBefore = normalizeTime(n.ValidBefore)
	required := []struct{ name, value string }{
		{"scheme", n.Scheme}, {"network", n.Network}, {"asset", n.Asset},
		{"payer", n.Payer}, {"payTo", n.PayTo}, {"nonce", n.Nonce},
	}
	for _, f := range required {
		if f.value == "" {
			return store.Payment{}, fmt.Errorf("%w: payment without %s", store.ErrInvalid, f.name)
		}
	}
	switch {
	case n.Amount == nil:
		return store.Payment{}, fmt.Errorf("%w: payment without amount", store.ErrInvalid)
	case n.Amount.Sign() < 0:
		return store.Payment{}, fmt.Errorf("%w: negative amount", store.ErrInvalid)
	case n.Amount.BitLen() > maxAmountBits:
		return store.Payment{}, fmt.Errorf("%w: amount exceeds 2^256-1", store.ErrInvalid)
	}
	return n, nil
}

// normalizeHex lowercases hex strings, including the 0X prefix, so lookups
// do not depend on the checksum casing a client happened to send.
func normalizeHex(s string) string {
	return strings.ToLower(s)
}

func normalizeTxHash(h string) (string, error) {
	h = normalizeHex(h)
	if h == "" {
		return "", fmt.Errorf("%w: empty transaction hash", store.ErrInvalid)
	}
	return h, nil
}
