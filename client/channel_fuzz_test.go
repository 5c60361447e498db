package client

import (
	"encoding/base64"
	"math/big"
	"net/http"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/x402"
)

// FuzzChannelSettled feeds arbitrary server answers to a channel payment. Whatever the server
// says, the payer must not panic, must release the channel, and must never adopt a charged
// total above what it has signed.
func FuzzChannelSettled(f *testing.F) {
	f.Add(200, []byte(`{"success":true,"transaction":"","network":"eip155:1337","amount":"","extra":{"chargedAmount":"1000","channelState":{"channelId":"0x00","balance":"10000","totalClaimed":"0","withdrawRequestedAt":0,"refundNonce":"0","chargedCumulativeAmount":"999999"}}}`), []byte(``))
	f.Add(402, []byte(``), []byte(`{"x402Version":2,"error":"invalid_batch_settlement_evm_cumulative_amount_mismatch: x","resource":{"url":"http://x"},"accepts":[{"scheme":"batch-settlement","network":"eip155:1337","amount":"1000","asset":"0x5FbDB2315678afecb367f032d93F642f64180aa3","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":60,"extra":{"receiverAuthorizer":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","withdrawDelay":900,"channelState":{"channelId":"0x00","balance":"1","totalClaimed":"0","withdrawRequestedAt":0,"refundNonce":"0","chargedCumulativeAmount":"5000000"}}}]}`))
	f.Add(502, []byte(`{"success":false}`), []byte(`{}`))
	// A withdrawal the server reports, and a refusal for lack of funds.
	f.Add(200, []byte(`{"success":true,"transaction":"","network":"eip155:1337","amount":"","extra":{"chargedAmount":"1000","channelState":{"channelId":"0x00","balance":"10000","totalClaimed":"0","withdrawRequestedAt":1700000000,"refundNonce":"0","chargedCumulativeAmount":"1000"}}}`), []byte(``))
	f.Add(402, []byte(``), []byte(`{"x402Version":2,"error":"invalid_batch_settlement_evm_cumulative_exceeds_balance: x","resource":{"url":"http://x"},"accepts":[]}`))
	f.Fuzz(func(t *testing.T, status int, response, required []byte) { fuzzBody(t, status, response, required) })
}

var fuzzOffer = batch.Offer{
	Network: "eip155:1337", Asset: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
	Name: "USD Coin", Version: "2", PayTo: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
	ReceiverAuthorizer: common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), WithdrawDelay: 900, MaxTimeoutSeconds: 60,
}

func fuzzBody(t *testing.T, status int, response, required []byte) {
	req := fuzzOffer.Requirements(big.NewInt(1000))
	{
		store := channelstore.NewMemory()
		// A cap well above the offer's minimum deposit: a refusal for lack of funds may teach the
		// payer that a larger deposit is needed, and the second round must still be payable.
		cp := &ChannelPayer{Signer: &batch.Signer{Key: testKey(t)}, Store: store, MaxDeposit: big.NewInt(1_000_000)}
		for round := 0; round < 2; round++ { // the second round proves the channel was released
			pp, err := cp.CreatePayload(req, &x402.ResourceInfo{URL: "http://127.0.0.1/"})
			if err != nil {
				t.Fatal(err)
			}
			resp := &http.Response{StatusCode: status, Header: http.Header{}}
			if len(response) > 0 {
				resp.Header.Set(x402.HeaderPaymentResponse, base64.StdEncoding.EncodeToString(response))
			}
			if len(required) > 0 {
				resp.Header.Set(x402.HeaderPaymentRequired, base64.StdEncoding.EncodeToString(required))
			}
			cp.Settled(t.Context(), pp, resp, nil)
			_, rec, err := cp.Channel(req)
			if err != nil || rec == nil {
				t.Fatalf("no record after an answer: %v", err)
			}
			if orZero(rec.Charged).Cmp(orZero(rec.SignedMax)) > 0 {
				t.Fatalf("adopted charged %s above the signed %s", rec.Charged, rec.SignedMax)
			}
		}
	}
}
