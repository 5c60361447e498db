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
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/client"
	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/internal/keyfile"
	"github.com/payper/payper/money"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/exact"
)

// headerList collects repeated -H flags.
type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func runPay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pay [flags] URL", "pay [flags] URL", stderr)
	method := fs.String("X", "", "HTTP method (default GET, or POST with -d)")
	var headers headerList
	fs.Var(&headers, "H", "request header \"Name: value\" (repeatable)")
	data := fs.String("d", "", "request body; @FILE reads a file, @- reads stdin")
	out := fs.String("o", "", "write the body to this file instead of stdout")
	include := fs.Bool("i", false, "print the response status and headers before the body")
	keyFile := fs.String("key-file", "", "file with the payer's private key (or set PAYPER_PRIVATE_KEY)")
	devAccount := fs.Int("dev-account", -1, "pay as this account of the public test mnemonic (local dev chains only)")
	maxFlag := fs.String("max", "$0.10", "refuse to pay more than this per request: \"$0.10\" or atomic units")
	decimals := fs.Uint("decimals", 6, "decimals of the token, to read a $ amount in --max")
	asJSON := fs.Bool("json", false, "print the payment as JSON on stderr")
	channelsDir := fs.String("channels-dir", defaultChannelsDir(), "escrow channel state (see `payper channel`)")
	noChannel := fs.Bool("no-channel", false, "never pay through an escrow channel; pay each request on chain (exact)")
	maxDeposit := fs.String("max-deposit", "", "allow opening or topping up an escrow channel with a deposit up to this (default: use open channels only)")
	retries := fs.Int("retries", client.DefaultMaxRetries,
		"resend after a connection error or a 502/503/504, waiting longer each time (honouring Retry-After); a paid request is resent with the same payment, never paid twice; 0 never resends")
	noIdempotency := fs.Bool("no-idempotency", false,
		"do not add an x402 payment-identifier to the payment (without one, a server cannot answer a resent payment from what it kept)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	if *retries < 0 {
		return fmt.Errorf("--retries: %d is negative", *retries)
	}
	key, err := payerKey(*keyFile, *devAccount)
	if err != nil {
		return err
	}
	maxAmount, err := money.ParseAmount(*maxFlag, uint8(*decimals))
	if err != nil {
		return fmt.Errorf("--max: %w", err)
	}
	req, err := buildRequest(ctx, *method, fs.Arg(0), *data, headers)
	if err != nil {
		return err
	}
	payers := []client.Payer{&exact.Signer{Key: key}}
	if !*noChannel {
		cp, err := channelPayer(key, *channelsDir, *maxDeposit, uint8(*decimals))
		if err != nil {
			return err
		}
		payers = append(payers, cp)
	}
	var paid *client.Payment
	transport := &client.Transport{
		Payers:        payers,
		MaxPerRequest: maxAmount,
		OnPayment:     func(p client.Payment) { paid = &p },
		MaxRetries:    *retries,
		NoIdempotency: *noIdempotency,
	}
	if *retries == 0 {
		transport.MaxRetries = -1
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if paid != nil {
		reportPayment(stderr, paid, crypto.PubkeyToAddress(key.PublicKey).Hex(), uint8(*decimals), *asJSON)
	}
	return writeResponse(stdout, resp, *out, *include)
}

// channelPayer pays through the escrow channels kept in dir; with maxDeposit it may also deposit.
func channelPayer(key *ecdsa.PrivateKey, dir, maxDeposit string, decimals uint8) (*client.ChannelPayer, error) {
	store, err := channelstore.Open(dir)
	if err != nil {
		return nil, err
	}
	cp := &client.ChannelPayer{Signer: &batch.Signer{Key: key}, Store: store}
	if maxDeposit != "" {
		if cp.MaxDeposit, err = money.ParseAmount(maxDeposit, decimals); err != nil {
			return nil, fmt.Errorf("--max-deposit: %w", err)
		}
	}
	return cp, nil
}

func payerKey(keyFile string, devAccount int) (*ecdsa.PrivateKey, error) {
	switch {
	case devAccount >= 0:
		a, err := devkeys.Derive(devkeys.TestMnemonic, devAccount)
		return a.Key, err
	case keyFile != "":
		return keyfile.Read(keyFile)
	case os.Getenv("PAYPER_PRIVATE_KEY") != "":
		return keyfile.Parse(os.Getenv("PAYPER_PRIVATE_KEY"))
	}
	return nil, errors.New("no payer key: use --key-file, PAYPER_PRIVATE_KEY or, on a dev chain, --dev-account")
}

func buildRequest(ctx context.Context, method, url, data string, headers []string) (*http.Request, error) {
	var body io.Reader
	if data != "" {
		switch {
		case data == "@-":
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return nil, err
			}
			body = strings.NewReader(string(b))
		case strings.HasPrefix(data, "@"):
			b, err := os.ReadFile(data[1:])
			if err != nil {
				return nil, err
			}
			body = strings.NewReader(string(b))
		default:
			body = strings.NewReader(data)
		}
		if method == "" {
			method = http.MethodPost
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("-H %q: want \"Name: value\"", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return req, nil
}

func reportPayment(w io.Writer, p *client.Payment, payer string, decimals uint8, asJSON bool) {
	amount, _ := new(big.Int).SetString(p.Requirement.Amount, 10)
	s := p.Settlement
	if asJSON {
		out := map[string]any{"amount": p.Requirement.Amount, "payer": payer, "payTo": p.Requirement.PayTo,
			"network": p.Requirement.Network, "asset": p.Requirement.Asset, "status": p.StatusCode, "settlement": s}
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	switch {
	case s != nil && s.Success && p.Requirement.Scheme == batch.Scheme:
		reportChannelPayment(w, p, amount, decimals)
	case s != nil && s.Success:
		fmt.Fprintf(w, "paid %s (%s atomic) from %s to %s on %s\ntx %s\n",
			money.FormatDollars(amount, decimals), amount, payer, p.Requirement.PayTo, p.Requirement.Network, s.Transaction)
	case s != nil:
		fmt.Fprintf(w, "payment of %s failed: %s %s\n", money.FormatDollars(amount, decimals), s.ErrorReason, s.ErrorMessage)
	default:
		fmt.Fprintf(w, "sent a payment of %s; the server answered %d without a settlement\n", money.FormatDollars(amount, decimals), p.StatusCode)
	}
}

// reportChannelPayment describes a payment by voucher, and the deposit that came with it, if any.
func reportChannelPayment(w io.Writer, p *client.Payment, amount *big.Int, decimals uint8) {
	var extra batch.ResponseExtra
	if raw, err := json.Marshal(p.Settlement.Extra); err == nil {
		_ = json.Unmarshal(raw, &extra)
	}
	fmt.Fprintf(w, "paid %s (%s atomic) by voucher to %s on %s\n", money.FormatDollars(amount, decimals), amount, p.Requirement.PayTo, p.Requirement.Network)
	if st := extra.ChannelState; st != nil && st.ChargedCumulativeAmount != nil {
		left := new(big.Int).Sub(st.Balance, st.ChargedCumulativeAmount)
		fmt.Fprintf(w, "channel %s: charged %s of %s, %s left\n", st.ChannelID.Hex(), money.FormatDollars(st.ChargedCumulativeAmount, decimals),
			money.FormatDollars(st.Balance, decimals), money.FormatDollars(left, decimals))
	}
	if tx := p.Settlement.Transaction; tx != "" {
		deposit, _ := new(big.Int).SetString(p.Settlement.Amount, 10)
		fmt.Fprintf(w, "deposited %s into the channel, tx %s\n", money.FormatDollars(deposit, decimals), tx)
	}
}

func writeResponse(stdout io.Writer, resp *http.Response, out string, include bool) error {
	if include {
		fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
		_ = resp.Header.Write(stdout)
		fmt.Fprintln(stdout)
	}
	dst := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		dst = f
	}
	if _, err := io.Copy(dst, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}

var _ flag.Value = (*headerList)(nil)
