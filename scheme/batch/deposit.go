package batch

import (
	"math/big"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// VerifyDeposit runs the local checks of a deposit payload: the deposit is at least
// t.MinDeposit (when set), the channel checks and cumulative rule of VerifyVoucher, the deposit
// authorization (window, binding to channel, token and amount, signature by the payer),
// totalClaimed < maxClaimable <= balance + deposit − pending withdrawal, and the voucher
// signature.
//
// What needs the chain stays with the caller: the payer's token balance, the Permit2 allowance
// and a simulation of deposit(). Smart-wallet signatures (not 65 bytes, or a zero
// payerAuthorizer) come back as an *OnchainCheckError together with the result.
func (v *Verifier) VerifyDeposit(t Terms, s Snapshot, p *Payload) (*Verified, error) {
	if err := expectPayload(p, TypeDeposit); err != nil {
		return nil, err
	}
	if !depositComplete(p.Deposit) {
		return nil, x402.Failf(x402.ReasonBatchDepositPayload, "deposit is missing or incomplete")
	}
	d := p.Deposit
	if t.MinDeposit != nil && d.Amount.Cmp(t.MinDeposit) < 0 {
		return nil, x402.Failf(x402.ReasonBatchDepositBelowMinDeposit, "deposit %s is below the minimum %s", d.Amount, t.MinDeposit)
	}
	id, err := v.checkNext(t, s, p)
	if err != nil {
		return nil, err
	}
	var auth localSig
	switch {
	case d.ERC3009 != nil:
		auth = v.erc3009Check(t, p)
	case d.Permit2 != nil && t.AssetTransferMethod != TransferPermit2:
		// Checked locally, it would only fail later, after chain reads, as an unsubmittable deposit.
		return nil, x402.Failf(x402.ReasonBatchERC3009AuthorizationRequired, "this server takes ERC-3009 deposit authorizations, not Permit2")
	case d.Permit2 != nil:
		auth = v.permit2Check(t, p)
	default:
		return nil, x402.Failf(x402.ReasonBatchERC3009AuthorizationRequired, "deposit carries no authorization")
	}
	if auth.err != nil {
		return nil, auth.err
	}
	if err := checkFunds(s, p, d.Amount); err != nil {
		return nil, err
	}
	return v.finish(id, p, auth, v.voucherCheck(p))
}

// depositComplete guards payloads built in Go rather than parsed: every amount a check reads
// must be there.
func depositComplete(d *Deposit) bool {
	if d == nil || !fitsUint128(d.Amount) {
		return false
	}
	if a := d.ERC3009; a != nil && (a.ValidAfter == nil || a.ValidBefore == nil) {
		return false
	}
	if a := d.Permit2; a != nil && (a.Amount == nil || a.Nonce == nil || a.Deadline == nil) {
		return false
	}
	return true
}

func (v *Verifier) erc3009Check(t Terms, p *Payload) localSig {
	a := p.Deposit.ERC3009
	if t.TokenName == "" || t.TokenVersion == "" {
		return localSig{err: x402.Failf(x402.ReasonBatchMissingEIP712Domain, "the token's EIP-712 name and version are not configured")}
	}
	now := v.now()
	if a.ValidBefore.Cmp(big.NewInt(now.Add(DepositValidityMargin).Unix())) < 0 {
		return localSig{err: x402.Failf(x402.ReasonBatchValidBefore, "deposit authorization expires at %s, too soon to deposit", a.ValidBefore)}
	}
	if a.ValidAfter.Cmp(big.NewInt(now.Unix())) > 0 {
		return localSig{err: x402.Failf(x402.ReasonBatchValidAfter, "deposit authorization is not valid before %s", a.ValidAfter)}
	}
	msg := ReceiveAuthorization{
		From: p.ChannelConfig.Payer, To: ERC3009CollectorAddress, Value: p.Deposit.Amount,
		ValidAfter: a.ValidAfter, ValidBefore: a.ValidBefore, Nonce: DepositNonce(p.Voucher.ChannelID, a.Salt),
	}
	domain := Domain{Name: t.TokenName, Version: t.TokenVersion, ChainID: v.chainID, VerifyingContract: t.Asset}
	digest := msg.Digest(domain.Separator())
	if len(a.Signature) != 65 {
		return localSig{pending: &SignatureCheck{What: "deposit authorization", Signer: msg.From, Digest: digest, Signature: a.Signature}}
	}
	signer, err := evmsig.RecoverSigner(digest, a.Signature)
	if err != nil {
		return localSig{err: x402.Fail(x402.ReasonBatchReceiveAuthorizationSig, "deposit authorization signature is not a valid ECDSA signature", err)}
	}
	if signer != msg.From {
		return localSig{err: x402.Failf(x402.ReasonBatchReceiveAuthorizationSig, "deposit authorization is not signed by the payer %s for this token and chain", msg.From.Hex())}
	}
	return localSig{}
}

func (v *Verifier) permit2Check(t Terms, p *Payload) localSig {
	a := p.Deposit.Permit2
	fail := func(r x402.Reason, format string, args ...any) localSig {
		return localSig{err: x402.Failf(r, format, args...)}
	}
	switch {
	case a.From != p.ChannelConfig.Payer:
		return fail(x402.ReasonBatchPermit2InvalidSignature, "permit2Authorization.from %s is not the payer", a.From.Hex())
	case a.Spender != Permit2CollectorAddress:
		return fail(x402.ReasonBatchPermit2InvalidSpender, "permit2Authorization.spender %s is not the Permit2 deposit collector", a.Spender.Hex())
	case a.Token != t.Asset:
		return fail(x402.ReasonBatchTokenMismatch, "permit2Authorization token %s is not the asset", a.Token.Hex())
	case a.Amount.Cmp(p.Deposit.Amount) != 0:
		return fail(x402.ReasonBatchPermit2AmountMismatch, "permit2Authorization amount %s is not the deposit %s", a.Amount, p.Deposit.Amount)
	case a.ChannelID != p.Voucher.ChannelID:
		return fail(x402.ReasonBatchChannelIDMismatch, "permit2Authorization witness is another channel")
	case a.Deadline.Cmp(big.NewInt(v.now().Add(DepositValidityMargin).Unix())) < 0:
		return fail(x402.ReasonBatchPermit2DeadlineExpired, "permit2Authorization deadline %s is too soon", a.Deadline)
	}
	digest := a.Transfer().Digest(v.permit2Sep)
	if len(a.Signature) != 65 {
		return localSig{pending: &SignatureCheck{What: "deposit authorization", Signer: a.From, Digest: digest, Signature: a.Signature}}
	}
	signer, err := evmsig.RecoverSigner(digest, a.Signature)
	if err != nil || signer != a.From {
		return fail(x402.ReasonBatchPermit2InvalidSignature, "permit2Authorization is not signed by the payer %s", a.From.Hex())
	}
	return localSig{}
}
