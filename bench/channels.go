package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// Test accounts of the public test mnemonic that pay: in the dev environment account 0 pays
// settlement gas and account 1 receives payments, so payers are accounts 2 to 9. Each holds
// 1,000,000 dev tokens; several channels of one account differ by their salt.
const (
	firstPayer = 2
	payerCount = 8
)

// depositRequests is how many requests one channel's deposit pays for: far more than any run
// needs ($1,000 at the demo price), so a channel never runs dry.
const depositRequests = 1_000_000

// channelSet is the open channels and the offer they pay.
type channelSet struct {
	offer   x402.PaymentRequirements
	price   *big.Int
	signers []*batch.Signer // one per channel
	// paymentIDs gives every voucher its own x402 payment identifier, as Payper's client SDK
	// does by default, so the gateway keeps each answer for retries.
	paymentIDs bool
}

// fetchOffer asks the gateway for the priced route's 402 and returns its batch-settlement offer.
func fetchOffer(ctx context.Context, client *http.Client, url string) (x402.PaymentRequirements, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return x402.PaymentRequirements{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return x402.PaymentRequirements{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return x402.PaymentRequirements{}, fmt.Errorf("GET %s: status %d, want 402", url, resp.StatusCode)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), 0)
	if err != nil {
		return x402.PaymentRequirements{}, fmt.Errorf("GET %s: %w", url, err)
	}
	for _, a := range pr.Accepts {
		if a.Scheme == batch.Scheme {
			return a, nil
		}
	}
	return x402.PaymentRequirements{}, fmt.Errorf("GET %s offers no %s payment", url, batch.Scheme)
}

// openChannels opens n channels through the gateway, one deposit each. The deposit rides on the
// channel's first paid request, whose voucher is for one price; the benchmark's vouchers
// continue from there.
func openChannels(ctx context.Context, client *http.Client, url string, offer x402.PaymentRequirements, n int) (*channelSet, error) {
	price, ok := x402.ParseAmount(offer.Amount)
	if !ok || price.Sign() <= 0 {
		return nil, fmt.Errorf("offer amount %q", offer.Amount)
	}
	set := &channelSet{offer: offer, price: price}
	accounts := devkeys.DevAccounts(firstPayer + payerCount)[firstPayer:]
	deposit := new(big.Int).Mul(price, big.NewInt(depositRequests))
	for c := range n {
		s := &batch.Signer{Key: accounts[c%payerCount].Key, Salt: common.BigToHash(big.NewInt(int64(c/payerCount + 1)))}
		h, err := paymentHeader(offer)(s.DepositPayload(offer, deposit, price))
		if err != nil {
			return nil, fmt.Errorf("channel %d: %w", c, err)
		}
		if err := payOnce(ctx, client, url, h, true); err != nil {
			return nil, fmt.Errorf("channel %d deposit: %w", c, err)
		}
		set.signers = append(set.signers, s)
	}
	return set, nil
}

// payOnce sends one paid request and checks it was served and charged.
func payOnce(ctx context.Context, client *http.Client, url, header string, wantTx bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set(x402.HeaderPaymentSignature, header)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err := checkPaid(resp); err != nil {
		return fmt.Errorf("%w (body %q)", err, body)
	}
	if wantTx {
		s, _ := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
		if s.Transaction == "" {
			return fmt.Errorf("no deposit transaction in the settlement response")
		}
	}
	return nil
}

// checkPaid accepts a 200 that carries a successful PAYMENT-RESPONSE.
func checkPaid(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		detail := ""
		if h := resp.Header.Get(x402.HeaderPaymentRequired); h != "" {
			if pr, err := x402.DecodePaymentRequired(h, 0); err == nil {
				detail = ": " + pr.Error
			}
		}
		return fmt.Errorf("status %d%s", resp.StatusCode, detail)
	}
	h := resp.Header.Get(x402.HeaderPaymentResponse)
	if h == "" {
		return fmt.Errorf("status 200 without PAYMENT-RESPONSE")
	}
	s, err := x402.DecodeSettlementResponse(h, 0)
	if err != nil {
		return fmt.Errorf("PAYMENT-RESPONSE: %w", err)
	}
	if !s.Success {
		return fmt.Errorf("PAYMENT-RESPONSE not successful: %s %s", s.ErrorReason, s.ErrorMessage)
	}
	return nil
}

// paymentHeader returns a function that wraps a signer's payload in the x402 envelope for offer
// and encodes it for PAYMENT-SIGNATURE.
func paymentHeader(offer x402.PaymentRequirements) func(*batch.Payload, error) (string, error) {
	return func(p *batch.Payload, err error) (string, error) {
		if err != nil {
			return "", err
		}
		pp, err := batch.PaymentPayload(offer, nil, p)
		if err != nil {
			return "", err
		}
		return x402.EncodeHeader(pp)
	}
}

// voucherHeader is the header of a channel's voucher number k after its deposit: cumulative
// (k+2) × price, since the deposit's voucher charged the first price.
func (s *channelSet) voucherHeader(channel, k int) (string, error) {
	cumulative := new(big.Int).Mul(s.price, big.NewInt(int64(k)+2))
	if !s.paymentIDs {
		return paymentHeader(s.offer)(s.signers[channel].VoucherPayload(s.offer, cumulative))
	}
	p, err := s.signers[channel].VoucherPayload(s.offer, cumulative)
	if err != nil {
		return "", err
	}
	pp, err := batch.PaymentPayload(s.offer, nil, p)
	if err != nil {
		return "", err
	}
	declared := map[string]json.RawMessage{x402.ExtensionPaymentIdentifier: x402.PaymentIdentifierDeclaration(false)}
	if pp.Extensions, _, err = x402.WithPaymentIdentifier(declared, x402.NewPaymentID()); err != nil {
		return "", err
	}
	return x402.EncodeHeader(pp)
}
