package exact

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// Offer is what a server accepts as exact payment: one token on one chain, paid to one address.
type Offer struct {
	Network           string // CAIP-2
	Asset             common.Address
	Name, Version     string // the token's EIP-712 domain
	PayTo             common.Address
	MaxTimeoutSeconds int64
}

// Domain returns the token's EIP-712 domain on the offer's chain.
func (o Offer) Domain() (Domain, error) {
	id, err := evmsig.ChainIDFromNetwork(o.Network)
	if err != nil {
		return Domain{}, err
	}
	return Domain{Name: o.Name, Version: o.Version, ChainID: id, VerifyingContract: o.Asset}, nil
}

// Requirements returns the x402 requirement for a price in atomic units.
func (o Offer) Requirements(amount *big.Int) x402.PaymentRequirements {
	return x402.PaymentRequirements{
		Scheme:            Scheme,
		Network:           o.Network,
		Amount:            amount.String(),
		Asset:             o.Asset.Hex(),
		PayTo:             o.PayTo.Hex(),
		MaxTimeoutSeconds: o.MaxTimeoutSeconds,
		Extra:             map[string]any{"name": o.Name, "version": o.Version},
	}
}

// domainFromRequirements reads the EIP-712 domain a requirement names. Missing name or version
// is the reference SDKs' invalid_exact_evm_missing_eip712_domain.
func domainFromRequirements(req x402.PaymentRequirements) (Domain, error) {
	name, _ := req.Extra["name"].(string)
	version, _ := req.Extra["version"].(string)
	if name == "" || version == "" {
		return Domain{}, x402.Failf(x402.ReasonExactMissingDomain, "requirements.extra must carry the token's EIP-712 name and version")
	}
	id, err := evmsig.ChainIDFromNetwork(req.Network)
	if err != nil {
		return Domain{}, x402.Failf(x402.ReasonExactNetworkMismatch, "%v", err)
	}
	asset, err := parseAddress(req.Asset)
	if err != nil {
		return Domain{}, x402.Failf(x402.ReasonExactPayload, "requirements.asset: %v", err)
	}
	return Domain{Name: name, Version: version, ChainID: id, VerifyingContract: asset}, nil
}
