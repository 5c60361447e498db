package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/client"
	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/internal/app"
	"github.com/payper/payper/money"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

const channelUsage = `Usage:
  payper channel open --deposit AMOUNT [flags] URL   open an escrow channel with URL's server by paying URL once
  payper channel status [flags] [URL]                 your channels (and, with an RPC URL, their on-chain state)
  payper channel withdraw [flags] URL|CHANNEL_ID      take back unspent funds after the withdraw delay
  payper channel refund [flags] URL                   ask the server to return unspent funds at once

A channel holds a deposit in the escrow contract; each request then costs a signed voucher and no
transaction. "payper pay" uses a channel automatically once one is open. Channel state is kept in
--channels-dir (default ~/.payper/channels, or PAYPER_CHANNELS_DIR).
`

func runChannel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, channelUsage)
		return errUsage
	}
	switch args[0] {
	case "open":
		return runChannelOpen(ctx, args[1:], stdout, stderr)
	case "status":
		return runChannelStatus(ctx, args[1:], stdout, stderr)
	case "withdraw":
		return runChannelWithdraw(ctx, args[1:], stdout, stderr)
	case "refund":
		return runChannelRefund(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, channelUsage)
		return nil
	}
	fmt.Fprintf(stderr, "payper channel: unknown command %q\n\n%s", args[0], channelUsage)
	return errUsage
}

// channelFlags are the flags every channel command shares.
type channelFlags struct {
	dir        *string
	keyFile    *string
	devAccount *int
	devDir     *string
	rpcURL     *string
	decimals   *uint
	asJSON     *bool
}

func addChannelFlags(fs *flag.FlagSet) *channelFlags {
	return &channelFlags{
		dir:        fs.String("channels-dir", defaultChannelsDir(), "where channel state is kept"),
		keyFile:    fs.String("key-file", "", "file with the payer's private key (or set PAYPER_PRIVATE_KEY)"),
		devAccount: fs.Int("dev-account", -1, "act as this account of the public test mnemonic (local dev chains only)"),
		devDir:     fs.String("data-dir", ".payper-dev", "a dev environment's directory, whose dev.json names the chain's RPC URL"),
		rpcURL:     fs.String("rpc-url", "", "chain JSON-RPC URL (default: from dev.json, if there is one)"),
		decimals:   fs.Uint("decimals", 6, "token decimals, to read and show $ amounts"),
		asJSON:     fs.Bool("json", false, "print JSON"),
	}
}

// defaultChannelsDir is ~/.payper/channels.
func defaultChannelsDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".payper", "channels")
	}
	return filepath.Join(home, ".payper", "channels")
}

func (f *channelFlags) key() (*ecdsa.PrivateKey, error) { return payerKey(*f.keyFile, *f.devAccount) }

func (f *channelFlags) store() (*channelstore.Dir, error) { return channelstore.Open(*f.dir) }

// payer pays through the channels in --channels-dir and never deposits on its own.
func (f *channelFlags) payer(key *ecdsa.PrivateKey) (*client.ChannelPayer, error) {
	return channelPayer(key, *f.dir, "", uint8(*f.decimals))
}

// rpc returns --rpc-url, else the RPC URL of the dev environment in --data-dir, else "".
func (f *channelFlags) rpc() string {
	if *f.rpcURL != "" {
		return *f.rpcURL
	}
	data, err := os.ReadFile(filepath.Join(*f.devDir, "dev.json"))
	if err != nil {
		return ""
	}
	var info app.DevInfo
	if json.Unmarshal(data, &info) != nil {
		return ""
	}
	return info.RPCURL
}

func (f *channelFlags) amount(flagName, s string) (*big.Int, error) {
	v, err := money.ParseAmount(s, uint8(*f.decimals))
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	return v, nil
}

// optionalAmount parses an amount flag that may be left empty: nil then, for the command's
// default.
func (f *channelFlags) optionalAmount(flagName, s string) (*big.Int, error) {
	if s == "" {
		return nil, nil
	}
	return f.amount(flagName, s)
}

// show formats an amount as "$0.001 (1000)".
func (f *channelFlags) show(v *big.Int) string {
	if v == nil {
		v = new(big.Int)
	}
	return fmt.Sprintf("%s (%s)", money.FormatDollars(v, uint8(*f.decimals)), v)
}

func runChannelOpen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("channel open", "channel open --deposit AMOUNT [flags] URL", stderr)
	depositFlag := fs.String("deposit", "", "how much to deposit: \"$1\" or atomic units (required)")
	maxFlag := fs.String("max", "$0.10", "refuse a request price above this: \"$0.10\" or atomic units")
	out := fs.String("o", "", "write the response body to this file (default: discard it)")
	cf := addChannelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *depositFlag == "" {
		fs.Usage()
		return errUsage
	}
	url := fs.Arg(0)
	key, err := cf.key()
	if err != nil {
		return err
	}
	deposit, err := cf.amount("deposit", *depositFlag)
	if err != nil {
		return err
	}
	maxPrice, err := cf.amount("max", *maxFlag)
	if err != nil {
		return err
	}
	cp, err := cf.payer(key)
	if err != nil {
		return err
	}
	cp.Deposit, cp.MaxDeposit = deposit, deposit
	offer, err := batchOfferAt(ctx, url)
	if err != nil {
		return err
	}
	if id, rec, err := cp.Channel(offer); err != nil {
		return err
	} else if rec != nil && rec.Remaining().Sign() > 0 {
		return fmt.Errorf("channel %s with this server is already open with %s left: pay through it with `payper pay`, or take the funds back with `payper channel refund` first",
			id.Hex(), cf.show(rec.Remaining()))
	}
	var paid *client.Payment
	tr := &client.Transport{Payers: []client.Payer{cp}, MaxPerRequest: maxPrice, OnPayment: func(p client.Payment) { paid = &p }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := writeResponse(io.Discard, resp, *out, false); err != nil {
		return err
	}
	_, rec, err := cp.Channel(offer)
	if err != nil || rec == nil {
		return fmt.Errorf("the payment went through but the channel state is missing: %v", err)
	}
	tx := ""
	if paid != nil && paid.Settlement != nil {
		tx = paid.Settlement.Transaction
	}
	if *cf.asJSON {
		v := viewOf(rec)
		v.DepositTx = tx
		return json.NewEncoder(stdout).Encode(v)
	}
	if tx == "" {
		fmt.Fprintf(stdout, "channel %s on %s already held funds: no deposit was needed\n", rec.ChannelID.Hex(), rec.Network)
	} else {
		fmt.Fprintf(stdout, "opened channel %s on %s\n", rec.ChannelID.Hex(), rec.Network)
		fmt.Fprintf(stdout, "  deposit    %s  tx %s\n", cf.show(deposit), tx)
	}
	printRecord(stdout, cf, rec)
	return nil
}

// batchOfferAt fetches url without paying and returns its batch-settlement offer.
func batchOfferAt(ctx context.Context, url string) (x402.PaymentRequirements, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return x402.PaymentRequirements{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return x402.PaymentRequirements{}, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return x402.PaymentRequirements{}, fmt.Errorf("%s answered %s, not 402: it does not charge for this request", url, resp.Status)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), 64<<10)
	if err != nil {
		return x402.PaymentRequirements{}, fmt.Errorf("%s: PAYMENT-REQUIRED: %w", url, err)
	}
	for _, o := range pr.Accepts {
		if o.Scheme == batch.Scheme {
			return o, nil
		}
	}
	return x402.PaymentRequirements{}, fmt.Errorf("%s does not offer escrow channels (%s)", url, batch.Scheme)
}

func runChannelRefund(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("channel refund", "channel refund [flags] URL", stderr)
	amountFlag := fs.String("amount", "", "refund only this much: \"$1\" or atomic units (default: everything unspent)")
	cf := addChannelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	key, err := cf.key()
	if err != nil {
		return err
	}
	amount, err := cf.optionalAmount("amount", *amountFlag)
	if err != nil {
		return err
	}
	cp, err := cf.payer(key)
	if err != nil {
		return err
	}
	res, err := cp.Refund(ctx, nil, fs.Arg(0), amount)
	if err != nil {
		return err
	}
	if *cf.asJSON {
		v := viewOf(res.Record)
		v.Refund = &refundView{Amount: res.Amount.String(), Transaction: res.Transaction}
		return json.NewEncoder(stdout).Encode(v)
	}
	fmt.Fprintf(stdout, "refunded %s from channel %s\n  tx         %s\n", cf.show(res.Amount), res.ChannelID.Hex(), res.Transaction)
	printRecord(stdout, cf, res.Record)
	return nil
}

// channelView is a channel as `payper channel … --json` prints it; amounts are atomic units.
type channelView struct {
	ChannelID         string      `json:"channelId"`
	Network           string      `json:"network"`
	Payer             string      `json:"payer"`
	PayTo             string      `json:"payTo"`
	Token             string      `json:"token"`
	WithdrawDelay     uint64      `json:"withdrawDelay"`
	Servers           []string    `json:"servers"`
	Deposited         string      `json:"deposited"`
	Balance           string      `json:"balance"`
	Charged           string      `json:"charged"`
	Remaining         string      `json:"remaining"`
	Refunded          string      `json:"refunded"`
	Unconfirmed       string      `json:"unconfirmedDeposit,omitempty"`
	PendingWithdrawal string      `json:"pendingWithdrawal,omitempty"` // as this payer knows it; not in Remaining
	DepositTx         string      `json:"depositTx,omitempty"`
	Refund            *refundView `json:"refund,omitempty"`
	OnChain           *chainView  `json:"onChain,omitempty"`
	Withdrawal        *withdrawal `json:"withdrawal,omitempty"`
}

type refundView struct {
	Amount      string `json:"amount"`
	Transaction string `json:"transaction"`
}

func viewOf(r *channelstore.Record) channelView {
	s := func(v *big.Int) string {
		if v == nil {
			return "0"
		}
		return v.String()
	}
	v := channelView{
		ChannelID: r.ChannelID.Hex(), Network: r.Network, Payer: r.Config.Payer.Hex(), PayTo: r.Config.Receiver.Hex(),
		Token: r.Config.Token.Hex(), WithdrawDelay: r.Config.WithdrawDelay, Servers: r.Origins,
		Deposited: s(r.Deposited), Balance: s(r.Balance), Charged: s(r.Charged), Remaining: s(r.Remaining()),
		Refunded: s(r.Refunded),
	}
	if r.Unconfirmed != nil && r.Unconfirmed.Sign() > 0 {
		v.Unconfirmed = r.Unconfirmed.String()
	}
	if r.WithdrawalPending() {
		v.PendingWithdrawal = r.PendingWithdrawal.String()
	}
	return v
}

func printRecord(w io.Writer, cf *channelFlags, r *channelstore.Record) {
	fmt.Fprintf(w, "  payer      %s\n  payTo      %s\n  token      %s\n", r.Config.Payer.Hex(), r.Config.Receiver.Hex(), r.Config.Token.Hex())
	if len(r.Origins) > 0 {
		fmt.Fprintf(w, "  servers    %s\n", strings.Join(r.Origins, ", "))
	}
	fmt.Fprintf(w, "  deposited  %s\n  charged    %s\n  remaining  %s\n", cf.show(r.Deposited), cf.show(r.Charged), cf.show(r.Remaining()))
	if r.WithdrawalPending() {
		fmt.Fprintf(w, "  withdrawing %s (not in remaining)\n", cf.show(r.PendingWithdrawal))
	}
	if r.Refunded != nil && r.Refunded.Sign() > 0 {
		fmt.Fprintf(w, "  refunded   %s\n", cf.show(r.Refunded))
	}
	if r.Unconfirmed != nil && r.Unconfirmed.Sign() > 0 {
		fmt.Fprintf(w, "  unconfirmed deposit %s (its outcome never came back; the next payment settles it)\n", cf.show(r.Unconfirmed))
	}
}

// findChannel returns the one local channel that arg names: a channel id, or a URL whose server
// the channel pays; with several for one server, the payer's.
func findChannel(store *channelstore.Dir, arg string, payer *ecdsa.PrivateKey) (*channelstore.Record, error) {
	records, listErr := store.List()
	var matches []*channelstore.Record
	for _, r := range records {
		switch {
		case strings.EqualFold(arg, r.ChannelID.Hex()):
			return r, nil
		case r.HasOrigin(arg) && (payer == nil || r.Config.Payer == crypto.PubkeyToAddress(payer.PublicKey)):
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		err := fmt.Errorf("no channel in %s for %s", store.Path(), arg)
		return nil, errors.Join(err, listErr)
	}
	ids := make([]string, len(matches))
	for i, m := range matches {
		ids[i] = m.ChannelID.Hex()
	}
	return nil, fmt.Errorf("several channels pay %s; name one: %s", arg, strings.Join(ids, ", "))
}
