package exact

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// ContractSignatures is implemented by a ChainReader that can ask an account whether it accepts
// a signature as its own (ERC-1271 isValidSignature). With it, a payer that is a contract (a
// smart wallet holding the tokens) pays as it can through the reference facilitator, and as the
// token itself accepts: EIP-3009 tokens such as USDC check a signature by the payer's key first
// and ask the payer contract otherwise. Without it, only a payer's own key can sign.
type ContractSignatures interface {
	// IsValidSignature reports whether account accepts sig for digest. An account without code,
	// or one that reverts or answers anything but the ERC-1271 magic value, does not; only a
	// chain that cannot be read is an error.
	IsValidSignature(ctx context.Context, account common.Address, digest common.Hash, sig []byte) (bool, error)
}

// checkSignature checks the signature the way the token will at settlement: the payer key's
// ECDSA signature, else the payer contract's word through ERC-1271. An ERC-6492 wrapper (a wallet
// that may not be deployed yet says how to deploy it) is taken off first; the wallet must already
// be deployed, as the reference requires unless its operator allows the factory, and Payper
// deploys nothing.
func (v *Verifier) checkSignature(ctx context.Context, pl *Verified) error {
	sig, wrapped, err := evmsig.UnwrapERC6492(pl.Payload.Signature)
	if err != nil {
		return x402.Fail(x402.ReasonExactSignature, "signature is an ERC-6492 wrapper that does not decode", err)
	}
	var keyErr error
	if !wrapped {
		if keyErr = checkKeySignature(pl, sig); keyErr == nil {
			return nil
		}
	}
	contracts, ok := v.Chain.(ContractSignatures)
	if !ok {
		if keyErr == nil {
			keyErr = x402.Failf(x402.ReasonExactSignature, "signature is an ERC-6492 wrapper, and no payer contract can be asked")
		}
		return keyErr
	}
	valid, err := contracts.IsValidSignature(ctx, pl.Payer, pl.digest, sig)
	if err != nil {
		return fmt.Errorf("%w: isValidSignature: %w", ErrChainUnavailable, err)
	}
	if !valid {
		return x402.Failf(x402.ReasonExactSignature,
			"signature is neither by authorization.from %s's key nor accepted by it as a contract (ERC-1271) for this token and chain", pl.Payer.Hex())
	}
	pl.Payload.Signature, pl.SignedByContract = sig, true
	return nil
}
