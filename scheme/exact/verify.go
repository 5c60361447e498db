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

// Defaults for Verifier.
const (
	// DefaultValidityMargin is how long an authorization must stay valid after verification, so
	// that the settlement transaction can still land (the reference SDKs use 6 s).
	DefaultValidityMargin = 6 * time.Second
	// DefaultClockSkew tolerates a payer clock running ahead when bounding validBefore.
	DefaultClockSkew = 60 * time.Second
)

// Verifier checks exact payments against the server's own requirements.
type Verifier struct {
	Chain          ChainReader
	Now            func() time.Time // default time.Now
	ValidityMargin time.Duration    // default DefaultValidityMargin
	ClockSkew      time.Duration    // default DefaultClockSkew
}

// Verified is a payment that passed every check.
type Verified struct {
	Payer        common.Address
	Token        common.Address
	Payload      Payload
	Requirements x402.PaymentRequirements
}

// Verify checks payload against req, the server's requirement that the payer's accepted offer
// matched. Local checks run first, cheapest first; chain reads run last. A payment problem is an
// *x402.Error carrying the reason; a chain read failure wraps ErrChainUnavailable.
func (v *Verifier) Verify(ctx context.Context, req x402.PaymentRequirements, p *x402.PaymentPayload) (*Verified, error) {
	pl, err := v.VerifyLocal(req, p)
	if err != nil {
		return nil, err
	}
	if err := v.checkChain(ctx, pl); err != nil {
		return nil, err
	}
	return pl, nil
}

// VerifyLocal runs every check that needs no chain state.
func (v *Verifier) VerifyLocal(req x402.PaymentRequirements, p *x402.PaymentPayload) (*Verified, error) {
	if p.Accepted.Scheme != Scheme || req.Scheme != Scheme {
		return nil, x402.Failf(x402.ReasonExactScheme, "scheme %q is not %q", p.Accepted.Scheme, Scheme)
	}
	if p.Accepted.Network != req.Network {
		return nil, x402.Failf(x402.ReasonExactNetworkMismatch, "network %q is not %q", p.Accepted.Network, req.Network)
	}
	pl, err := ParsePayload(p.Payload)
	if err != nil {
		return nil, err
	}
	domain, err := domainFromRequirements(req)
	if err != nil {
		return nil, err
	}
	a := pl.Authorization
	payTo, err := parseAddress(req.PayTo)
	if err != nil {
		return nil, x402.Failf(x402.ReasonExactPayload, "requirements.payTo: %v", err)
	}
	if a.To != payTo {
		return nil, x402.Failf(x402.ReasonExactRecipientMismatch, "authorization.to %s is not payTo %s", a.To.Hex(), payTo.Hex())
	}
	amount, ok := x402.ParseAmount(req.Amount)
	if !ok || a.Value.Cmp(amount) != 0 {
		return nil, x402.Failf(x402.ReasonExactValueMismatch, "authorization.value %s must equal the price %s", a.Value, req.Amount)
	}
	if err := v.checkWindow(a, req.MaxTimeoutSeconds); err != nil {
		return nil, err
	}
	signer, err := evmsig.RecoverSigner(a.Digest(domain.Separator()), pl.Signature)
	if err != nil {
		return nil, x402.Fail(x402.ReasonExactSignature, "signature is not a valid ECDSA signature", err)
	}
	if signer != a.From {
		return nil, x402.Failf(x402.ReasonExactSignature, "signature is not by authorization.from %s for this token and chain", a.From.Hex())
	}
	return &Verified{Payer: a.From, Token: domain.VerifyingContract, Payload: *pl, Requirements: req}, nil
}

func (v *Verifier) checkWindow(a Authorization, maxTimeoutSeconds int64) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	margin, skew := v.ValidityMargin, v.ClockSkew
	if margin == 0 {
		margin = DefaultValidityMargin
	}
	if skew == 0 {
		skew = DefaultClockSkew
	}
	nowSec := big.NewInt(now.Unix())
	if a.ValidBefore.Cmp(new(big.Int).Add(nowSec, big.NewInt(int64(margin/time.Second)))) < 0 {
		return x402.Failf(x402.ReasonExactValidBefore, "authorization expires at %s, too soon to settle", a.ValidBefore)
	}
	if a.ValidAfter.Cmp(nowSec) > 0 {
		return x402.Failf(x402.ReasonExactValidAfter, "authorization is not valid before %s", a.ValidAfter)
	}
	if maxTimeoutSeconds > 0 {
		latest := new(big.Int).Add(nowSec, big.NewInt(maxTimeoutSeconds+int64(skew/time.Second)))
		if a.ValidBefore.Cmp(latest) > 0 {
			return x402.Failf(x402.ReasonExactValidBefore, "authorization stays valid longer than maxTimeoutSeconds (%d s) allows", maxTimeoutSeconds)
		}
	}
	return nil
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
