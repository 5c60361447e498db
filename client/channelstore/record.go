// Package channelstore keeps a payer's view of its batch-settlement escrow channels: one Record
// per channel, in memory (Memory, for tests) or as one small JSON file per channel under a
// directory (Dir), written atomically so that a crash or restart loses nothing it acknowledged.
//
// A record holds no secret: the channel's immutable config, what the payer deposited, and the
// charged total and escrow balance the server last reported. The package knows no HTTP, chain
// or signing; client.ChannelPayer decides what goes in.
package channelstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/evmsig"
)

// ErrNotFound means no record exists for the channel.
var ErrNotFound = errors.New("channelstore: channel not found")

// Record is what a payer knows about one of its channels. Nil amounts read as zero.
type Record struct {
	ChannelID common.Hash
	Network   string // CAIP-2, e.g. eip155:8453
	Config    batch.ChannelConfig
	// Origins are the servers ("http://host:port") paid through the channel, for finding it by URL.
	Origins []string
	// Deposited is the total this payer deposited into the channel.
	Deposited *big.Int
	// Balance and TotalClaimed are the escrow's figures as the server last reported them.
	Balance      *big.Int
	TotalClaimed *big.Int
	// Charged is the server's charged cumulative total: the next voucher is Charged + price.
	Charged *big.Int
	// SignedMax is the largest voucher amount this payer has signed on the channel.
	SignedMax *big.Int
	// Refunded is the total returned by cooperative refunds.
	Refunded *big.Int
	// Unconfirmed is a deposit sent whose outcome never came back; the next payment checks it.
	Unconfirmed *big.Int
	// PendingWithdrawal is a timed withdrawal in progress as far as this payer knows. The escrow
	// pays it out once the delay has passed, so it is not there to spend: the server refuses
	// vouchers that reach into it. When its amount is not known (the server only reported that
	// one exists), it is an estimate from above.
	PendingWithdrawal *big.Int
	// WithdrawRequestedAt is when that withdrawal started, in unix seconds of the chain; zero when
	// unknown.
	WithdrawRequestedAt uint64
	// LastDepositTx is the transaction of the latest deposit the server reported.
	LastDepositTx common.Hash
	UpdatedAt     time.Time
}

// Remaining is what the payer may still spend: Balance − Charged − PendingWithdrawal, never below
// zero.
func (r *Record) Remaining() *big.Int {
	out := new(big.Int).Sub(orZero(r.Balance), orZero(r.Charged))
	out.Sub(out, orZero(r.PendingWithdrawal))
	if out.Sign() < 0 {
		out.SetInt64(0)
	}
	return out
}

// WithdrawalPending reports whether the payer knows of a withdrawal in progress.
func (r *Record) WithdrawalPending() bool {
	return r.PendingWithdrawal != nil && r.PendingWithdrawal.Sign() > 0
}

// SetWithdrawal records a pending withdrawal of amount started at requestedAt (unix seconds, 0
// when unknown); a nil or zero amount clears it.
func (r *Record) SetWithdrawal(amount *big.Int, requestedAt uint64) {
	if amount == nil || amount.Sign() <= 0 {
		r.PendingWithdrawal, r.WithdrawRequestedAt = nil, 0
		return
	}
	r.PendingWithdrawal, r.WithdrawRequestedAt = new(big.Int).Set(amount), requestedAt
}

// AddOrigin records that the channel pays the server of rawURL; it reports whether it was new.
func (r *Record) AddOrigin(rawURL string) bool {
	o := Origin(rawURL)
	if o == "" {
		return false
	}
	for _, have := range r.Origins {
		if have == o {
			return false
		}
	}
	r.Origins = append(r.Origins, o)
	return true
}

// HasOrigin reports whether the channel pays the server of rawURL.
func (r *Record) HasOrigin(rawURL string) bool {
	o := Origin(rawURL)
	for _, have := range r.Origins {
		if o != "" && have == o {
			return true
		}
	}
	return false
}

// Origin returns "scheme://host[:port]" of rawURL in lower case, or "" when it has none.
func Origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// Clone returns a deep copy.
func (r *Record) Clone() *Record {
	out := *r
	out.Origins = append([]string(nil), r.Origins...)
	for _, p := range []**big.Int{&out.Deposited, &out.Balance, &out.TotalClaimed, &out.Charged, &out.SignedMax, &out.Refunded, &out.Unconfirmed, &out.PendingWithdrawal} {
		if *p != nil {
			*p = new(big.Int).Set(*p)
		}
	}
	return &out
}

// Check verifies that the record is self-consistent: a known network, and a channel id that is
// the config's id on that network's settlement contract.
func (r *Record) Check() error {
	chainID, err := evmsig.ChainIDFromNetwork(r.Network)
	if err != nil {
		return fmt.Errorf("channelstore: %w", err)
	}
	if id := r.Config.ChannelID(batch.SettlementDomain(chainID).Separator()); id != r.ChannelID {
		return fmt.Errorf("channelstore: config hashes to channel %s, not %s", id.Hex(), r.ChannelID.Hex())
	}
	return nil
}

type wireConfig struct {
	Payer              common.Address `json:"payer"`
	PayerAuthorizer    common.Address `json:"payerAuthorizer"`
	Receiver           common.Address `json:"receiver"`
	ReceiverAuthorizer common.Address `json:"receiverAuthorizer"`
	Token              common.Address `json:"token"`
	WithdrawDelay      uint64         `json:"withdrawDelay"`
	Salt               common.Hash    `json:"salt"`
}

type wireRecord struct {
	ChannelID    common.Hash `json:"channelId"`
	Network      string      `json:"network"`
	Config       wireConfig  `json:"channelConfig"`
	Origins      []string    `json:"origins,omitempty"`
	Deposited    string      `json:"deposited"`
	Balance      string      `json:"balance"`
	TotalClaimed string      `json:"totalClaimed"`
	Charged      string      `json:"chargedCumulativeAmount"`
	SignedMax    string      `json:"signedMaxClaimable"`
	Refunded     string      `json:"refunded"`
	Unconfirmed  string      `json:"unconfirmedDeposit,omitempty"`
	// Both withdrawal keys are absent from records written before they existed.
	PendingWithdrawal   string       `json:"pendingWithdrawal,omitempty"`
	WithdrawRequestedAt uint64       `json:"withdrawRequestedAt,omitempty"`
	LastDepositTx       *common.Hash `json:"lastDepositTx,omitempty"`
	UpdatedAt           time.Time    `json:"updatedAt"`
}

// MarshalJSON writes the record with amounts as decimal strings.
func (r Record) MarshalJSON() ([]byte, error) {
	c := r.Config
	w := wireRecord{
		ChannelID: r.ChannelID, Network: r.Network, Origins: r.Origins,
		Config: wireConfig{Payer: c.Payer, PayerAuthorizer: c.PayerAuthorizer, Receiver: c.Receiver,
			ReceiverAuthorizer: c.ReceiverAuthorizer, Token: c.Token, WithdrawDelay: c.WithdrawDelay, Salt: c.Salt},
		Deposited: orZero(r.Deposited).String(), Balance: orZero(r.Balance).String(),
		TotalClaimed: orZero(r.TotalClaimed).String(), Charged: orZero(r.Charged).String(),
		SignedMax: orZero(r.SignedMax).String(), Refunded: orZero(r.Refunded).String(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.Unconfirmed != nil && r.Unconfirmed.Sign() > 0 {
		w.Unconfirmed = r.Unconfirmed.String()
	}
	if r.WithdrawalPending() {
		w.PendingWithdrawal, w.WithdrawRequestedAt = r.PendingWithdrawal.String(), r.WithdrawRequestedAt
	}
	if r.LastDepositTx != (common.Hash{}) {
		w.LastDepositTx = &r.LastDepositTx
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a record strictly: no unknown keys, non-negative decimal amounts, and a
// channel id that matches the config (Check).
func (r *Record) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireRecord
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("channelstore: %w", err)
	}
	if dec.More() {
		return errors.New("channelstore: trailing data after the record")
	}
	out := Record{
		ChannelID: w.ChannelID, Network: w.Network, Origins: w.Origins, UpdatedAt: w.UpdatedAt,
		Config: batch.ChannelConfig{Payer: w.Config.Payer, PayerAuthorizer: w.Config.PayerAuthorizer,
			Receiver: w.Config.Receiver, ReceiverAuthorizer: w.Config.ReceiverAuthorizer, Token: w.Config.Token,
			WithdrawDelay: w.Config.WithdrawDelay, Salt: w.Config.Salt},
	}
	if w.LastDepositTx != nil {
		out.LastDepositTx = *w.LastDepositTx
	}
	var errs []error
	amount := func(name, s string, optional bool) *big.Int {
		if s == "" && optional {
			return nil
		}
		v, ok := parseAmount(s)
		if !ok {
			errs = append(errs, fmt.Errorf("%s %q is not a non-negative integer", name, s))
		}
		return v
	}
	out.Deposited = amount("deposited", w.Deposited, false)
	out.Balance = amount("balance", w.Balance, false)
	out.TotalClaimed = amount("totalClaimed", w.TotalClaimed, false)
	out.Charged = amount("chargedCumulativeAmount", w.Charged, false)
	out.SignedMax = amount("signedMaxClaimable", w.SignedMax, false)
	out.Refunded = amount("refunded", w.Refunded, false)
	out.Unconfirmed = amount("unconfirmedDeposit", w.Unconfirmed, true)
	out.PendingWithdrawal = amount("pendingWithdrawal", w.PendingWithdrawal, true)
	out.WithdrawRequestedAt = w.WithdrawRequestedAt
	if w.WithdrawRequestedAt != 0 && !out.WithdrawalPending() {
		errs = append(errs, errors.New("withdrawRequestedAt without a pendingWithdrawal"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("channelstore: %w", errors.Join(errs...))
	}
	if err := out.Check(); err != nil {
		return err
	}
	*r = out
	return nil
}

// parseAmount reads a decimal uint128, the widest amount the escrow holds.
func parseAmount(s string) (*big.Int, bool) {
	if s == "" || len(s) > 39 || (len(s) > 1 && s[0] == '0') {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.BitLen() > 128 {
		return nil, false
	}
	return v, true
}

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}
