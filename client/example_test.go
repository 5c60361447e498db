package client_test

import (
	"crypto/ecdsa"
	"log"
	"math/big"
	"net/http"
	"path/filepath"

	"github.com/payper/payper/client"
	"github.com/payper/payper/client/channelstore"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/scheme/exact"
)

// A client that pays by voucher through escrow channels where the server offers them, and by a
// one-off transfer elsewhere. Channel state is kept on disk.
func ExampleTransport_channels() {
	var key *ecdsa.PrivateKey // the payer's key
	home := "/home/me"

	store, err := channelstore.Open(filepath.Join(home, ".payper", "channels"))
	if err != nil {
		log.Fatal(err)
	}
	channels := &client.ChannelPayer{
		Signer:     &batch.Signer{Key: key},
		Store:      store,
		Deposit:    big.NewInt(5_000_000),  // $5.00 of a 6-decimal token per deposit
		MaxDeposit: big.NewInt(20_000_000), // never more than $20 in one deposit
	}
	httpClient := &http.Client{Transport: &client.Transport{
		Payers:        []client.Payer{channels, &exact.Signer{Key: key}},
		MaxPerRequest: big.NewInt(10_000), // refuse any request priced above $0.01
		Budget:        client.NewBudget(big.NewInt(1_000_000)),
	}}
	resp, err := httpClient.Get("https://api.example.com/v1/quote")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}
