package batch

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// Signer builds client payloads with local keys, as the reference client does. It keeps no
// channel state: the caller tracks the charged total and decides when to deposit.
type Signer struct {
	Key        *ecdsa.PrivateKey // the payer: signs deposit authorizations
	VoucherKey *ecdsa.PrivateKey // the payer authorizer; nil means Key signs vouchers too
	Salt       common.Hash       // channel salt (one channel per salt); zero like the reference client
	Now        func() time.Time  // default time.Now
	Rand       io.Reader         // authorization salts and nonces; default crypto/rand
}

// Address is the payer's address.
func (s *Signer) Address() common.Address { return crypto.PubkeyToAddress(s.Key.PublicKey) }

func (s *Signer) voucherKey() *ecdsa.PrivateKey {
	if s.VoucherKey != nil {
		return s.VoucherKey
	}
	return s.Key
}

// ChannelConfig returns the channel this signer pays req through: receiver = payTo, token =
// asset, receiverAuthorizer and withdrawDelay from extra, payer and payerAuthorizer from the
// keys, and Salt.
func (s *Signer) ChannelConfig(req x402.PaymentRequirements) (ChannelConfig, error) {
	if req.Scheme != Scheme {
		return ChannelConfig{}, fmt.Errorf("batch: cannot pay scheme %q", req.Scheme)
	}
	e, err := ParseRequirementsExtra(req.Extra)
	if err != nil {
		return ChannelConfig{}, fmt.Errorf("batch: requirements: %w", err)
	}
	payTo, err1 := parseAddress(req.PayTo)
	asset, err2 := parseAddress(req.Asset)
	if err := errors.Join(err1, err2); err != nil {
		return ChannelConfig{}, fmt.Errorf("batch: requirements payTo or asset: %w", err)
	}
	return ChannelConfig{
		Payer: s.Address(), PayerAuthorizer: crypto.PubkeyToAddress(s.voucherKey().PublicKey),
		Receiver: payTo, ReceiverAuthorizer: e.ReceiverAuthorizer, Token: asset,
		WithdrawDelay: e.WithdrawDelay, Salt: s.Salt,
	}, nil
}

// VoucherPayload signs a voucher for the cumulative maxClaimable (the charged total so far plus
// req.Amount) on this signer's channel.
func (s *Signer) VoucherPayload(req x402.PaymentRequirements, maxClaimable *big.Int) (*Payload, error) {
	cfg, sep, err := s.channel(req)
	if err != nil {
		return nil, err
	}
	v, err := s.signVoucher(sep, cfg.ChannelID(sep), maxClaimable)
	if err != nil {
		return nil, err
	}
	return &Payload{Type: TypeVoucher, ChannelConfig: cfg, Voucher: v}, nil
}

// RefundPayload asks for a cooperative refund: a zero-charge voucher at the charged total and,
// optionally, the amount to refund (nil: everything refundable).
func (s *Signer) RefundPayload(req x402.PaymentRequirements, charged, amount *big.Int) (*Payload, error) {
	if amount != nil && (amount.Sign() <= 0 || !fitsUint128(amount)) {
		return nil, fmt.Errorf("batch: refund amount must be positive and fit in uint128")
	}
	cfg, sep, err := s.channel(req)
	if err != nil {
		return nil, err
	}
	v, err := s.signVoucher(sep, cfg.ChannelID(sep), charged)
	if err != nil {
		return nil, err
	}
	return &Payload{Type: TypeRefund, ChannelConfig: cfg, Voucher: v, RefundAmount: amount}, nil
}

// DepositPayload signs a deposit of amount into this signer's channel, through ERC-3009 or,
// when extra.assetTransferMethod is "permit2", Permit2, together with a voucher for
// maxClaimable. The authorization is valid from now for req.MaxTimeoutSeconds.
func (s *Signer) DepositPayload(req x402.PaymentRequirements, amount, maxClaimable *big.Int) (*Payload, error) {
	if amount == nil || amount.Sign() <= 0 || !fitsUint128(amount) {
		return nil, fmt.Errorf("batch: deposit amount must be positive and fit in uint128")
	}
	e, err := ParseRequirementsExtra(req.Extra)
	if err != nil {
		return nil, fmt.Errorf("batch: requirements: %w", err)
	}
	cfg, sep, err := s.channel(req)
	if err != nil {
		return nil, err
	}
	id := cfg.ChannelID(sep)
	chainID, _ := evmsig.ChainIDFromNetwork(req.Network) // checked by channel
	var random [32]byte
	if _, err := io.ReadFull(s.random(), random[:]); err != nil {
		return nil, fmt.Errorf("batch: random: %w", err)
	}
	deadline := big.NewInt(s.now().Unix() + timeoutOf(req))
	d := &Deposit{Amount: new(big.Int).Set(amount)}
	switch e.AssetTransferMethod {
	case "", TransferEIP3009:
		if e.Name == "" || e.Version == "" {
			return nil, fmt.Errorf("batch: ERC-3009 deposits need extra.name and extra.version")
		}
		salt := common.Hash(random)
		msg := ReceiveAuthorization{
			From: cfg.Payer, To: ERC3009CollectorAddress, Value: amount, ValidAfter: new(big.Int),
			ValidBefore: deadline, Nonce: DepositNonce(id, salt),
		}
		domain := Domain{Name: e.Name, Version: e.Version, ChainID: chainID, VerifyingContract: cfg.Token}
		sig, err := evmsig.SignDigest(s.Key, msg.Digest(domain.Separator()))
		if err != nil {
			return nil, err
		}
		d.ERC3009 = &ERC3009Authorization{ValidAfter: msg.ValidAfter, ValidBefore: deadline, Salt: salt, Signature: sig}
	case TransferPermit2:
		a := &Permit2Authorization{
			From: cfg.Payer, Token: cfg.Token, Amount: d.Amount, Spender: Permit2CollectorAddress,
			Nonce: new(big.Int).SetBytes(random[:]), Deadline: deadline, ChannelID: id,
		}
		if a.Signature, err = evmsig.SignDigest(s.Key, a.Transfer().Digest(Permit2Separator(chainID))); err != nil {
			return nil, err
		}
		d.Permit2 = a
	default:
		return nil, fmt.Errorf("batch: unsupported assetTransferMethod %q", e.AssetTransferMethod)
	}
	v, err := s.signVoucher(sep, id, maxClaimable)
	if err != nil {
		return nil, err
	}
	return &Payload{Type: TypeDeposit, ChannelConfig: cfg, Voucher: v, Deposit: d}, nil
}

// PaymentPayload wraps p in the x402 envelope that goes into PAYMENT-SIGNATURE.
func PaymentPayload(req x402.PaymentRequirements, resource *x402.ResourceInfo, p *Payload) (*x402.PaymentPayload, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("batch: encode payload: %w", err)
	}
	return &x402.PaymentPayload{X402Version: x402.Version, Resource: resource, Accepted: req, Payload: raw}, nil
}

func (s *Signer) channel(req x402.PaymentRequirements) (ChannelConfig, common.Hash, error) {
	cfg, err := s.ChannelConfig(req)
	if err != nil {
		return ChannelConfig{}, common.Hash{}, err
	}
	chainID, err := evmsig.ChainIDFromNetwork(req.Network)
	if err != nil {
		return ChannelConfig{}, common.Hash{}, fmt.Errorf("batch: %w", err)
	}
	return cfg, SettlementDomain(chainID).Separator(), nil
}

func (s *Signer) signVoucher(sep, id common.Hash, maxClaimable *big.Int) (SignedVoucher, error) {
	if !fitsUint128(maxClaimable) {
		return SignedVoucher{}, fmt.Errorf("batch: maxClaimableAmount must fit in uint128")
	}
	v := Voucher{ChannelID: id, MaxClaimableAmount: new(big.Int).Set(maxClaimable)}
	sig, err := evmsig.SignDigest(s.voucherKey(), v.Digest(sep))
	if err != nil {
		return SignedVoucher{}, err
	}
	return SignedVoucher{ChannelID: id, MaxClaimableAmount: v.MaxClaimableAmount, Signature: sig}, nil
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Signer) random() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// timeoutOf is how long a deposit authorization stays valid: the requirement's timeout, or a
// minute when it names none.
func timeoutOf(req x402.PaymentRequirements) int64 {
	if req.MaxTimeoutSeconds > 0 {
		return req.MaxTimeoutSeconds
	}
	return 60
}
