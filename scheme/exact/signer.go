package exact

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/scheme/evmsig"
	"github.com/payper/payper/x402"
)

// Signer creates exact payments with a local private key.
type Signer struct {
	Key  *ecdsa.PrivateKey
	Now  func() time.Time // default time.Now
	Rand io.Reader        // nonce source, default crypto/rand
}

// Scheme is the x402 scheme the signer pays.
func (s *Signer) Scheme() string { return Scheme }

// Address is the payer's address.
func (s *Signer) Address() common.Address { return crypto.PubkeyToAddress(s.Key.PublicKey) }

// CreatePayload signs an authorization for exactly req.Amount to req.PayTo, valid from now until
// now + maxTimeoutSeconds, and wraps it as an x402 payment payload.
func (s *Signer) CreatePayload(req x402.PaymentRequirements, resource *x402.ResourceInfo) (*x402.PaymentPayload, error) {
	if req.Scheme != Scheme {
		return nil, fmt.Errorf("exact: cannot pay scheme %q", req.Scheme)
	}
	domain, err := domainFromRequirements(req)
	if err != nil {
		return nil, err
	}
	payTo, err := parseAddress(req.PayTo)
	if err != nil {
		return nil, fmt.Errorf("exact: payTo: %w", err)
	}
	amount, ok := x402.ParseAmount(req.Amount)
	if !ok {
		return nil, fmt.Errorf("exact: amount %q is not a decimal integer", req.Amount)
	}
	timeout := req.MaxTimeoutSeconds
	if timeout <= 0 {
		timeout = 60
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	random := s.Rand
	if random == nil {
		random = rand.Reader
	}
	var nonce common.Hash
	if _, err := io.ReadFull(random, nonce[:]); err != nil {
		return nil, fmt.Errorf("exact: nonce: %w", err)
	}
	auth := Authorization{
		From:        s.Address(),
		To:          payTo,
		Value:       amount,
		ValidAfter:  big.NewInt(0),
		ValidBefore: big.NewInt(now().Unix() + timeout),
		Nonce:       nonce,
	}
	sig, err := evmsig.SignDigest(s.Key, auth.Digest(domain.Separator()))
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(Payload{Signature: sig, Authorization: auth})
	if err != nil {
		return nil, err
	}
	return &x402.PaymentPayload{X402Version: x402.Version, Resource: resource, Accepted: req, Payload: raw}, nil
}
