package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// ErrRefundRefused means the server answered a refund request without refunding.
var ErrRefundRefused = errors.New("client: refund refused")

// RefundResult is the outcome of a cooperative refund.
type RefundResult struct {
	ChannelID   common.Hash
	Amount      *big.Int // returned to the payer
	Transaction string   // the refund transaction
	Record      *channelstore.Record
}

// Refund asks the server of url for a cooperative refund from the channel that pays url's
// batch-settlement offer: amount, or everything not yet charged when amount is nil. The server
// claims what was charged and returns the rest in one transaction, with no withdraw delay. The
// request is a GET of url carrying a refund payload (a voucher for exactly the charged total, so
// nothing more is spent); after a corrective 402 the payer resynchronises, as for payments, and
// asks once more. rt sends the requests (nil: http.DefaultTransport).
func (p *ChannelPayer) Refund(ctx context.Context, rt http.RoundTripper, url string, amount *big.Int) (*RefundResult, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if amount != nil && amount.Sign() <= 0 {
		return nil, errors.New("client: refund amount must be positive")
	}
	challenge, offer, err := probeOffer(ctx, rt, url)
	if err != nil {
		return nil, err
	}
	ref, err := p.channelOf(offer)
	if err != nil {
		return nil, err
	}
	p.lock(ref.id)
	defer p.unlock(ref.id)
	for attempt := 0; ; attempt++ {
		rec, err := p.loadOrNew(ref)
		if err != nil {
			return nil, err
		}
		charged := new(big.Int).Set(orZero(rec.Charged))
		resp, err := p.sendRefund(ctx, rt, url, offer, challenge, charged, amount)
		if err != nil {
			return nil, err
		}
		rec.AddOrigin(url)
		rec.SignedMax = maxOf(orZero(rec.SignedMax), charged)
		if res, done, err := p.refunded(rec, ref, resp); done {
			return res, err
		}
		pr, _ := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), maxHeaderBytes)
		if pr == nil {
			return nil, fmt.Errorf("%w: the server answered %s", ErrRefundRefused, resp.Status)
		}
		if attempt == 0 && isReason(pr.Error, x402.ReasonBatchCumulativeAmountMismatch, x402.ReasonBatchCumulativeBelowClaimed) {
			if p.resyncFrom(rec, ref, charged, offer, pr) {
				continue
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrRefundRefused, pr.Error)
	}
}

func (p *ChannelPayer) sendRefund(ctx context.Context, rt http.RoundTripper, url string, offer x402.PaymentRequirements, challenge *x402.PaymentRequired, charged, amount *big.Int) (*http.Response, error) {
	pl, err := p.Signer.RefundPayload(offer, charged, amount)
	if err != nil {
		return nil, err
	}
	pp, err := batch.PaymentPayload(offer, &challenge.Resource, pl)
	if err != nil {
		return nil, err
	}
	pp.Extensions = challenge.Extensions
	header, err := x402.EncodeHeader(pp)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(x402.HeaderPaymentSignature, header)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

// refunded handles a PAYMENT-RESPONSE to a refund request; done is false when there is none.
func (p *ChannelPayer) refunded(rec *channelstore.Record, ref channelRef, resp *http.Response) (_ *RefundResult, done bool, _ error) {
	h := resp.Header.Get(x402.HeaderPaymentResponse)
	if h == "" {
		return nil, false, nil
	}
	s, err := batch.DecodeSettlementResponse(h, maxHeaderBytes)
	if err != nil {
		return nil, true, fmt.Errorf("client: refund answer: %w", err)
	}
	if !s.Success {
		return nil, true, fmt.Errorf("%w: %s %s", ErrRefundRefused, s.ErrorReason, s.ErrorMessage)
	}
	refunded, ok := x402.ParseAmount(s.Amount)
	if !ok {
		return nil, true, fmt.Errorf("client: refund answer amount %q", s.Amount)
	}
	rec.Refunded = new(big.Int).Add(orZero(rec.Refunded), refunded)
	if rec.WithdrawalPending() {
		// The escrow pays a refund out of a pending withdrawal first.
		rec.SetWithdrawal(new(big.Int).Sub(rec.PendingWithdrawal, refunded), rec.WithdrawRequestedAt)
	}
	if s.Extra != nil && s.Extra.ChannelState != nil && s.Extra.ChannelState.ChannelID == ref.id {
		st := s.Extra.ChannelState
		rec.Balance = new(big.Int).Set(orZero(st.Balance))
		rec.TotalClaimed = new(big.Int).Set(orZero(st.TotalClaimed))
		p.adoptWithdrawal(rec, st, nil)
	} else {
		rec.Balance = new(big.Int).Sub(orZero(rec.Balance), refunded)
	}
	if err := p.save(rec); err != nil {
		return nil, true, err
	}
	return &RefundResult{ChannelID: ref.id, Amount: refunded, Transaction: s.Transaction, Record: rec.Clone()}, true, nil
}

func (p *ChannelPayer) resyncFrom(rec *channelstore.Record, ref channelRef, base *big.Int, offer x402.PaymentRequirements, pr *x402.PaymentRequired) bool {
	for _, o := range pr.Accepts {
		if !x402.SameOffer(o, offer) {
			continue
		}
		adopted, err := p.resync(rec, ref, base, o.Extra)
		if err != nil {
			p.log().Warn("corrective 402 not adopted", "channel", ref.id.Hex(), "err", err)
			return false
		}
		return adopted && p.save(rec) == nil
	}
	return false
}

// probeOffer fetches url without payment and returns its 402 and batch-settlement offer.
func probeOffer(ctx context.Context, rt http.RoundTripper, url string) (*x402.PaymentRequired, x402.PaymentRequirements, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, x402.PaymentRequirements{}, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, x402.PaymentRequirements{}, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return nil, x402.PaymentRequirements{}, fmt.Errorf("client: %s answered %s, not 402: it does not charge for this request", url, resp.Status)
	}
	pr, err := readChallenge(resp)
	if err != nil {
		return nil, x402.PaymentRequirements{}, err
	}
	for _, o := range pr.Accepts {
		if o.Scheme == batch.Scheme {
			return pr, o, nil
		}
	}
	offered := make([]string, len(pr.Accepts))
	for i, o := range pr.Accepts {
		offered[i] = o.Scheme
	}
	return nil, x402.PaymentRequirements{}, fmt.Errorf("client: %s offers no %s (only %s)", url, batch.Scheme, strings.Join(offered, ", "))
}
