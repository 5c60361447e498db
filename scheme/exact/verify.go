package exact

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// ErrChainUnavailable marks verification that could not finish because chain state could not be
// read. It is not the payer's fault: answer 503 and keep the authorization usable.
var ErrChainUnavailable = errors.New("chain state unavailable")

// ChainReader reads the token state verification needs.
type ChainReader interface {
	BalanceOf(ctx context.Context, token, owner common.Address) (*big.Int, error)
	AuthorizationState(ctx context.Context, token, authorizer common.Address, nonce common.Hash) (bool, error)
}

// PaymentStateReader is a ChainReader that reads both in one call: one round trip to the node,
// both values from the same block. Verify uses it when its ChainReader has it.
type PaymentStateReader interface {
	PaymentState(ctx context.Context, token, authorizer common.Address, nonce common.Hash) (used bool, balance *big.Int, err error)
}

// DefaultValidityMargin is how long an authorization must stay valid after verification, so
// that the settlement transaction can still land: the reference facilitator's 6 s.
const DefaultValidityMargin = 6 * time.Second

// Verifier checks exact payments against the server's own requirements.
//
// The time window is the reference's: validAfter <= now and validBefore >= now + ValidityMargin.
// How far ahead validBefore lies is the payer's business, as it is for the reference: a stock
// client signs now + maxTimeoutSeconds, but any client may sign a longer window, and an
// authorization that stays valid longer is no less good a payment (the nonce is reserved in the
// store and spent on chain at settlement, so it cannot be used twice however long it lives).
type Verifier struct {
	Chain ChainReader
	Now   func() time.Time // default time.Now
	// ValidityMargin is how long the authorization must still be valid (default
	// DefaultValidityMargin). The gateway raises it to its settlement inclusion margin when an
	// operator sets that above 6 s: stricter than the reference then, on purpose, since a
	// payment that could not be sent in time would be refused after the upstream was called.
	ValidityMargin time.Duration
}

// Verified is a payment that passed every check.
type Verified struct {
	Payer        common.Address
	Token        common.Address
	Payload      Payload // its Signature is the one to settle with (see SignedByContract)
	Requirements x402.PaymentRequirements
	// SignedByContract says the payer is a contract that accepted the signature through ERC-1271:
	// it is settled as it was verified, byte for byte, through the token's bytes form of
	// transferWithAuthorization. An ERC-6492 wrapper has been taken off Payload.Signature.
	SignedByContract bool

	digest common.Hash // what the payer signed
}

// Verify checks payload against req, the server's requirement that the payer's accepted offer
// matched. The checks run in the order of the reference facilitator (@x402/evm's exact verify),
// so that a payment with several faults is refused for the same reason: scheme, EIP-712 domain,
// network, the payload's form, the signature (by the payer's key, or by the payer contract through
// ERC-1271, which reads the chain), recipient, time window, amount; then the nonce and the
// balance on chain. A payment problem is an *x402.Error carrying the reason; a chain read failure
// wraps ErrChainUnavailable.
func (v *Verifier) Verify(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload) (*Verified, error) {
	pl, err := parseRequest(req, p)
	if err != nil {
		return nil, err
	}
	if err := v.checkSignature(ctx, pl); err != nil {
		return nil, err
	}
	if err := v.checkTerms(pl); err != nil {
		return nil, err
	}
	if err := v.checkChain(ctx, pl); err != nil {
		return nil, err
	}
	return pl, nil
}

// VerifyLocal runs every check that needs no chain state. Only a signature by the payer's own
// key passes it: one that a payer contract would have to vouch for fails as invalid.
func (v *Verifier) VerifyLocal(req x402.PaymentRequirements, p *x402.PaymentPayload) (*Verified, error) {
	pl, err := parseRequest(req, p)
	if err != nil {
		return nil, err
	}
	if err := checkKeySignature(pl, pl.Payload.Signature); err != nil {
		return nil, err
	}
	if err := v.checkTerms(pl); err != nil {
		return nil, err
	}
	return pl, nil
}

// parseRequest checks the scheme, the EIP-712 domain the requirement names and the network, and
// parses the payload.
func parseRequest(req x402.PaymentRequirements, p *x402.PaymentPayload) (*Verified, error) {
	if p.Accepted.Scheme != Scheme || req.Scheme != Scheme {
		return nil, x402.Failf(x402.ReasonExactScheme, "scheme %q is not %q", p.Accepted.Scheme, Scheme)
	}
	domain, err := domainFromRequirements(req)
	if err != nil {
		return nil, err
	}
	if p.Accepted.Network != req.Network {
		return nil, x402.Failf(x402.ReasonExactNetworkMismatch, "network %q is not %q", p.Accepted.Network, req.Network)
	}
	pl, err := ParsePayload(p.Payload)
	if err != nil {
		return nil, err
	}
	a := pl.Authorization
	return &Verified{Payer: a.From, Token: domain.VerifyingContract, Payload: *pl, Requirements: req,
		digest: a.Digest(domain.Separator())}, nil
}

// checkKeySignature checks that sig is the payer key's ECDSA signature of the authorization.
func checkKeySignature(pl *Verified, sig []byte) error {
	signer, err := evmsig.RecoverSigner(pl.digest, sig)
	if err != nil {
		return x402.Fail(x402.ReasonExactSignature, "signature is not a valid ECDSA signature", err)
	}
	if signer != pl.Payer {
		return x402.Failf(x402.ReasonExactSignature, "signature is not by authorization.from %s for this token and chain", pl.Payer.Hex())
	}
	return nil
}

// checkTerms checks what the payer authorized against the requirement: recipient, time window
// and amount.
func (v *Verifier) checkTerms(pl *Verified) error {
	a, req := pl.Payload.Authorization, pl.Requirements
	payTo, err := parseAddress(req.PayTo)
	if err != nil {
		return x402.Failf(x402.ReasonExactPayload, "requirements.payTo: %v", err)
	}
	if a.To != payTo {
		return x402.Failf(x402.ReasonExactRecipientMismatch, "authorization.to %s is not payTo %s", a.To.Hex(), payTo.Hex())
	}
	if err := v.checkWindow(a); err != nil {
		return err
	}
	amount, ok := x402.ParseAmount(req.Amount)
	if !ok || a.Value.Cmp(amount) != 0 {
		return x402.Failf(x402.ReasonExactValueMismatch, "authorization.value %s must equal the price %s", a.Value, req.Amount)
	}
	return nil
}

func (v *Verifier) checkWindow(a Authorization) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	margin := v.ValidityMargin
	if margin == 0 {
		margin = DefaultValidityMargin
	}
	if ExpiresWithin(a.ValidBefore, now, margin) {
		return x402.Failf(x402.ReasonExactValidBefore, "authorization expires at %s, too soon to settle", a.ValidBefore)
	}
	if a.ValidAfter.Cmp(big.NewInt(now.Unix())) > 0 {
		return x402.Failf(x402.ReasonExactValidAfter, "authorization is not valid before %s", a.ValidAfter)
	}
	return nil
}

// ExpiresWithin reports whether an authorization whose validBefore is the given unix time
// expires too soon after now for a settlement to be mined: less than margin after now, as the
// reference refuses validBefore < now + 6 s (whole seconds), or already. Verification and the
// check right before a settlement is sent both use it, so that what one accepts at an instant
// the other accepts too.
func ExpiresWithin(validBefore *big.Int, now time.Time, margin time.Duration) bool {
	// The token requires block.timestamp < validBefore: one expiring this second has expired.
	limit := max(now.Add(margin).Unix(), now.Unix()+1)
	return validBefore.Cmp(big.NewInt(limit)) < 0
}

func (v *Verifier) checkChain(ctx context.Context, pl *Verified) error {
	a := pl.Payload.Authorization
	used, balance, err := v.paymentState(ctx, pl.Token, a)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrChainUnavailable, err)
	}
	if used {
		return x402.Failf(x402.ReasonExactNonceAlreadyUsed, "authorization nonce %s was already used or canceled", a.Nonce.Hex())
	}
	if balance.Cmp(a.Value) < 0 {
		return x402.Failf(x402.ReasonExactInsufficientBalance, "payer balance %s is below the price %s", balance, a.Value)
	}
	return nil
}

// paymentState reads whether a's nonce is used and, unless it is, the payer's balance.
func (v *Verifier) paymentState(ctx context.Context, token common.Address, a Authorization) (used bool, balance *big.Int, err error) {
	if r, ok := v.Chain.(PaymentStateReader); ok {
		return r.PaymentState(ctx, token, a.From, a.Nonce)
	}
	if used, err = v.Chain.AuthorizationState(ctx, token, a.From, a.Nonce); err != nil || used {
		return used, nil, err
	}
	balance, err = v.Chain.BalanceOf(ctx, token, a.From)
	return false, balance, err
}
