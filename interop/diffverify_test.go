package interop_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/payper/payper/chain/devkeys"
	exactmethod "github.com/payper/payper/method/exact"
	"github.com/payper/payper/paywall"
	"github.com/payper/payper/pricing"
	"github.com/payper/payper/x402"
)

const (
	diffResourceURL = "http://gateway.test/paid"
	diffPrice       = 1000
	// Dev accounts: 0 settles, 1 is payTo, 5 pays; 4 stands in for the stock facilitator,
	// which only reads here.
	diffSettler, diffPayTo, diffFacilitator, diffPayer = 0, 1, 4, 5
)

// TestDifferentialVerify sends the same payments through the reference seller (diffverify.mjs:
// @x402/core's header decoding and offer matching, then @x402/evm's exact facilitator verify,
// reading the embedded chain) and through Payper's paywall with its exact method (decoding,
// matching, verification and the reservation that precedes any settlement), and compares the
// verdicts: accepted, or refused with which reason. Payper must accept every payment the
// reference accepts. The only disagreements allowed are those listed in knownDifferences, each
// with why it is deliberate and safe; a new disagreement fails, and so does a listed one that
// no longer happens, so the list stays exact.
//
// Both sides judge time by the same frozen clock, one second before the chain's latest block,
// so that a window's edges give the same verdict on every run and the reference's simulation on
// that block agrees with its own clock (see newDiffEnv).
func TestDifferentialVerify(t *testing.T) {
	node := nodeBinary(t)
	env := newDiffEnv(t)
	cases := env.diffCases()
	headers := make(map[string]string, len(cases))
	for _, c := range cases {
		if _, dup := headers[c.name]; dup {
			t.Fatalf("case %q is listed twice", c.name)
		}
		d := env.draftFor(c.name)
		c.edit(d)
		h, err := d.header()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		headers[c.name] = h
		env.offers[c.name] = d.offer
		env.margins[c.name] = d.margin
	}
	reference := env.runReference(t, node, cases, headers)

	seen, accepted := map[string]bool{}, map[string]bool{}
	for _, c := range cases {
		ref, ok := reference[c.name]
		if !ok {
			t.Errorf("%s: the reference gave no verdict", c.name)
			continue
		}
		got := env.payperVerdict(t, env.offers[c.name], env.margins[c.name], headers[c.name])
		known, listed := knownDifferences[c.name]
		seen[c.name], accepted[c.name] = listed, got == accept
		switch {
		case !listed && got != ref.Verdict:
			t.Errorf("%s: Payper %s, reference %s (%s)", c.name, got, ref.Verdict, ref.Detail)
		case listed && (got != known.payper || ref.Verdict != known.reference):
			t.Errorf("%s: Payper %s, reference %s (%s); the known difference says Payper %s, reference %s",
				c.name, got, ref.Verdict, ref.Detail, known.payper, known.reference)
		default:
			t.Logf("%-45s Payper %-60s reference %s", c.name, got, ref.Verdict)
		}
	}
	for name := range knownDifferences {
		if _, ok := seen[name]; !ok {
			t.Errorf("known difference %q names no case", name)
		}
	}
	if !t.Failed() {
		env.settleAccepted(t, cases, headers, accepted)
	}
}

// settleAccepted settles every payment Payper accepted, all at once, on the frozen clock: an
// accepted payment must be one the token pays out, in whatever spelling or window it came. Only
// a payment signed for an EIP-712 domain that is not the token's (a seller misconfiguration the
// reference catches by simulation) must fail, and be charged nothing. Payments with validBefore
// only the margin ahead are left out: the chain's clock has moved on since the freeze.
func (e *diffEnv) settleAccepted(t *testing.T, cases []diffCase, headers map[string]string, accepted map[string]bool) {
	t.Helper()
	ctx := t.Context()
	token, payTo := common.HexToAddress(e.offer.Asset), common.HexToAddress(e.offer.PayTo)
	before, err := e.method.Chain.BalanceOf(ctx, token, payTo)
	if err != nil {
		t.Fatal(err)
	}
	var settled atomic.Int64
	var wg sync.WaitGroup
	for _, c := range cases {
		if !accepted[c.name] || c.name == "valid/validBefore-at-margin" {
			continue
		}
		wg.Go(func() {
			p, err := x402.DecodePaymentPayload(headers[c.name], 0)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				return
			}
			offer := e.offers[c.name]
			charge, err := e.method.Authorize(ctx, offer, p, paywall.RequestInfo{Method: http.MethodGet, Route: "/paid", Resource: diffResourceURL})
			if err != nil {
				t.Errorf("%s: accepted, then refused: %v", c.name, err)
				return
			}
			s, err := charge.Complete(ctx)
			mustFail := knownDifferences[c.name].why == noSimulation
			switch {
			case mustFail && err == nil:
				t.Errorf("%s: settled in %s, though the token does not know the domain it was signed for", c.name, s.Transaction)
			case !mustFail && err != nil:
				t.Errorf("%s: accepted, but the settlement failed: %v", c.name, err)
			case err == nil:
				settled.Add(1)
				t.Logf("%-45s settled in %s", c.name, s.Transaction)
			default:
				t.Logf("%-45s not settled, as expected: %v", c.name, err)
			}
		})
	}
	wg.Wait()
	after, err := e.method.Chain.BalanceOf(ctx, token, payTo)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := new(big.Int).Sub(after, before), big.NewInt(settled.Load()*diffPrice); got.Cmp(want) != 0 {
		t.Errorf("payTo received %s for %d settled payments, want %s", got, settled.Load(), want)
	}
}

// fixedOffer is the exact method offering one given requirement, which may be one the
// configuration would not produce (an offer case).
type fixedOffer struct {
	*exactmethod.Method
	req x402.PaymentRequirements
}

func (m fixedOffer) Requirements(*big.Int) x402.PaymentRequirements { return m.req }

// payperVerdict sends header to a paywall offering offer, in front of a handler that answers
// 418, so that an accepted payment reaches the handler and is released unsettled.
func (e *diffEnv) payperVerdict(t *testing.T, offer x402.PaymentRequirements, margin time.Duration, header string) string {
	t.Helper()
	method := e.method
	if margin != 0 {
		method = e.exactMethod(method.Offer, method.Ledger, method.Chain, margin)
	}
	table, err := pricing.New([]pricing.Rule{{Method: http.MethodGet, Path: "/paid", Price: big.NewInt(diffPrice)}})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := paywall.New(paywall.Options{Pricer: table, Methods: []paywall.Method{fixedOffer{method, offer}}})
	if err != nil {
		t.Fatal(err)
	}
	served := false
	h := pw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = true
		w.WriteHeader(http.StatusTeapot)
	}))
	req := httptest.NewRequest(http.MethodGet, diffResourceURL, nil)
	req.Header.Set(x402.HeaderPaymentSignature, header)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	switch {
	case served:
		return "accept"
	case rec.Code == http.StatusPaymentRequired:
		challenge, err := x402.DecodePaymentRequired(rec.Header().Get(x402.HeaderPaymentRequired), 0)
		if err != nil {
			t.Fatalf("402 without a readable challenge: %v", err)
		}
		if challenge.Error == "No matching payment requirements" {
			return "reject:" + string(x402.ReasonNoMatchingRequirements)
		}
		reason, _, _ := strings.Cut(challenge.Error, ":")
		return "reject:" + reason
	case rec.Code == http.StatusBadRequest:
		var body struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return "malformed:" + body.Error
	}
	return fmt.Sprintf("status:%d", rec.Code)
}

// refVerdict is one line of diffverify.mjs's answer.
type refVerdict struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
}

// runReference runs diffverify.mjs over every case at once.
func (e *diffEnv) runReference(t *testing.T, node string, cases []diffCase, headers map[string]string) map[string]refVerdict {
	t.Helper()
	type refCase struct {
		Name   string                   `json:"name"`
		Header string                   `json:"header"`
		Offer  x402.PaymentRequirements `json:"offer"`
	}
	in := struct {
		RPCURL         string    `json:"rpcURL"`
		ChainID        int64     `json:"chainId"`
		Now            int64     `json:"now"`
		FacilitatorKey string    `json:"facilitatorKey"`
		Cases          []refCase `json:"cases"`
	}{RPCURL: e.rpcURL, ChainID: e.chainID.Int64(), Now: e.now.Unix(),
		FacilitatorKey: "0x" + hex.EncodeToString(crypto.FromECDSA(devkeys.DevAccounts(diffFacilitator + 1)[diffFacilitator].Key))}
	for _, c := range cases {
		in.Cases = append(in.Cases, refCase{Name: c.name, Header: headers[c.name], Offer: e.offers[c.name]})
	}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), nodeRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "diffverify.mjs")
	cmd.Env = scriptEnv(nil)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("diffverify.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	var out []refVerdict
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		t.Fatalf("diffverify.mjs printed %q: %v (stderr: %s)", stdout.String(), err, stderr.String())
	}
	verdicts := make(map[string]refVerdict, len(out))
	for _, v := range out {
		verdicts[v.Name] = v
	}
	return verdicts
}
