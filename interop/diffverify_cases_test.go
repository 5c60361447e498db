package interop_test

import (
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// diffCase is one payment of the differential test: a valid payment and one edit of it.
type diffCase struct {
	name string
	edit func(d *draft)
}

// diffCases are the differential test's payments: valid ones, then every member of the
// envelope, the payer's copy of the offer, the authorization and the signature changed one at a
// time, then the seller's own offer. A name reads "what/how"; each case has its own nonce.
func (e *diffEnv) diffCases() []diffCase {
	now := e.now.Unix()
	at := func(sec int64) *big.Int { return big.NewInt(sec) }
	other := addressOf(keyFor("other"))
	maxUint256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	return concatCases(
		[]diffCase{
			{"valid/stock-client", func(d *draft) {}},
			{"valid/validAfter-now", func(d *draft) { d.auth.ValidAfter = at(now) }},
			{"valid/validAfter-v1-client", func(d *draft) { d.auth.ValidAfter = at(now - 600) }},
			{"valid/validBefore-at-margin", func(d *draft) { d.auth.ValidBefore = at(now + 6) }},
			{"valid/validBefore-beyond-maxTimeoutSeconds", func(d *draft) { d.auth.ValidBefore = at(now + 3600) }},
			{"valid/validBefore-beyond-int64", func(d *draft) { d.auth.ValidBefore = new(big.Int).Lsh(big.NewInt(1), 63) }},
			{"valid/validBefore-max-uint256", func(d *draft) { d.auth.ValidBefore = maxUint256 }},
			{"valid/addresses-lowercase", func(d *draft) {
				d.wire = func(env map[string]any) {
					a := authorizationOf(env)
					a["from"], a["to"] = strings.ToLower(a["from"].(string)), strings.ToLower(a["to"].(string))
				}
			}},
			{"valid/hex-uppercase", func(d *draft) {
				d.wire = func(env map[string]any) {
					authorizationOf(env)["nonce"] = "0x" + strings.ToUpper(d.auth.Nonce.Hex()[2:])
					p := member(env, "payload")
					p["signature"] = "0x" + strings.ToUpper(p["signature"].(string)[2:])
				}
			}},
			{"valid/unknown-members", func(d *draft) {
				d.wire = func(env map[string]any) {
					env["memo"] = "x"
					member(env, "payload")["memo"] = "x"
					authorizationOf(env)["memo"] = "x"
					env["extensions"] = map[string]any{"unknown-extension": map[string]any{"info": 1}}
				}
			}},
			{"valid/resource-absent", func(d *draft) { d.wire = func(env map[string]any) { delete(env, "resource") } }},
		},
		e.acceptedCases(other),
		e.envelopeCases(),
		e.authorizationCases(other, maxUint256),
		e.signatureCases(other),
		e.offerCases(),
		[]diffCase{
			// An operator may raise the inclusion margin; verification then asks as much.
			{"config/inclusion-margin-10s", func(d *draft) { d.margin, d.auth.ValidBefore = 10*time.Second, at(now+8) }},
		},
	)
}

// acceptedCases change the payer's copy of the offer it pays.
func (e *diffEnv) acceptedCases(other common.Address) []diffCase {
	return []diffCase{
		{"accepted/scheme-other", func(d *draft) { d.wire = setAccepted("scheme", "upto") }},
		{"accepted/network-other", func(d *draft) { d.wire = setAccepted("network", "eip155:1") }},
		{"accepted/amount-other", func(d *draft) { d.wire = setAccepted("amount", "999") }},
		{"accepted/amount-leading-zero", func(d *draft) { d.wire = setAccepted("amount", "01000") }},
		{"accepted/asset-other", func(d *draft) { d.wire = setAccepted("asset", other.Hex()) }},
		{"accepted/asset-lowercase", func(d *draft) { d.wire = setAccepted("asset", strings.ToLower(e.offer.Asset)) }},
		{"accepted/payTo-other", func(d *draft) { d.wire = setAccepted("payTo", other.Hex()) }},
		{"accepted/payTo-lowercase", func(d *draft) { d.wire = setAccepted("payTo", strings.ToLower(e.offer.PayTo)) }},
		{"accepted/maxTimeoutSeconds-other", func(d *draft) { d.wire = setAccepted("maxTimeoutSeconds", 3600) }},
		{"accepted/extra-absent", func(d *draft) {
			d.wire = func(env map[string]any) { delete(member(env, "accepted"), "extra") }
		}},
		{"accepted/extra-name-other", func(d *draft) {
			d.wire = func(env map[string]any) { member(env, "accepted", "extra")["name"] = "Other Coin" }
		}},
		{"accepted/extra-more", func(d *draft) {
			d.wire = func(env map[string]any) { member(env, "accepted", "extra")["assetTransferMethod"] = "eip3009" }
		}},
		{"accepted/unknown-member", func(d *draft) { d.wire = setAccepted("memo", "x") }},
		{"accepted/absent", func(d *draft) { d.wire = func(env map[string]any) { delete(env, "accepted") } }},
	}
}

// envelopeCases change the envelope around the scheme's payload.
func (e *diffEnv) envelopeCases() []diffCase {
	setVersion := func(v any) func(env map[string]any) {
		return func(env map[string]any) { env["x402Version"] = v }
	}
	return []diffCase{
		{"envelope/x402Version-1", func(d *draft) { d.wire = setVersion(1) }},
		{"envelope/x402Version-3", func(d *draft) { d.wire = setVersion(3) }},
		{"envelope/x402Version-string", func(d *draft) { d.wire = setVersion("2") }},
		{"envelope/x402Version-absent", func(d *draft) { d.wire = func(env map[string]any) { delete(env, "x402Version") } }},
		{"envelope/x402Version-repeated", func(d *draft) { d.text = replaceOnce("{", `{"x402Version":1,`) }},
		{"envelope/key-case", func(d *draft) { d.text = replaceOnce(`"accepted":`, `"Accepted":`) }},
		{"envelope/not-json", func(d *draft) { d.text = func(string) string { return `{"x402Version":2,` } }},
		{"envelope/payload-absent", func(d *draft) { d.wire = func(env map[string]any) { delete(env, "payload") } }},
		{"envelope/payload-string", func(d *draft) { d.wire = func(env map[string]any) { env["payload"] = "0x" } }},
		{"envelope/authorization-absent", func(d *draft) {
			d.wire = func(env map[string]any) { delete(member(env, "payload"), "authorization") }
		}},
		{"envelope/permit2-payload", func(d *draft) {
			d.wire = func(env map[string]any) {
				p := member(env, "payload")
				delete(p, "authorization")
				p["permit2Authorization"] = map[string]any{
					"from": d.auth.From.Hex(), "spender": "0x402085c248EeA27D92E8b30b2C58ed07f9E20001",
					"permitted": map[string]any{"token": e.offer.Asset, "amount": "1000"},
					"nonce":     "1", "deadline": d.auth.ValidBefore.String(),
					"witness": map[string]any{"to": e.offer.PayTo, "validAfter": "0"},
				}
			}
		}},
	}
}

// authorizationCases change one member of the authorization: signed by the payer (a payer
// who meant it), or changed after signing (tampered), or spelled another way on the wire.
func (e *diffEnv) authorizationCases(other common.Address, maxUint256 *big.Int) []diffCase {
	now := e.now.Unix()
	at := func(sec int64) *big.Int { return big.NewInt(sec) }
	return []diffCase{
		{"from/tampered", func(d *draft) { d.wire = setAuth("from", other.Hex()) }},
		{"from/unfunded-payer", func(d *draft) { d.key = keyFor("unfunded"); d.auth.From = addressOf(d.key) }},
		{"from/smart-wallet", func(d *draft) { d.auth.From = diffWallet }},
		{"from/smart-wallet-erc6492", func(d *draft) { d.auth.From, d.sig = diffWallet, erc6492 }},
		{"from/smart-wallet-not-its-owner", func(d *draft) { d.auth.From, d.key = diffWallet, keyFor("other") }},
		{"from/undeployed-wallet-erc6492", func(d *draft) { d.auth.From, d.sig = addressOf(keyFor("undeployed")), erc6492 }},
		{"from/malformed", func(d *draft) { d.wire = setAuth("from", "0x1234") }},
		{"to/tampered", func(d *draft) { d.wire = setAuth("to", other.Hex()) }},
		{"to/signed-other", func(d *draft) { d.auth.To = other }},
		{"to/malformed", func(d *draft) { d.wire = setAuth("to", "0x1234") }},

		{"value/tampered", func(d *draft) { d.wire = setAuth("value", "999") }},
		{"value/signed-below", func(d *draft) { d.auth.Value = at(999) }},
		{"value/signed-above", func(d *draft) { d.auth.Value = at(1001) }},
		{"value/leading-zero", func(d *draft) { d.wire = setAuth("value", "01000") }},
		{"value/json-number", func(d *draft) { d.wire = setAuth("value", 1000) }},
		{"value/hex", func(d *draft) { d.wire = setAuth("value", "0x3e8") }},
		{"value/spaces", func(d *draft) { d.wire = setAuth("value", " 1000 ") }},
		{"value/plus-sign", func(d *draft) { d.wire = setAuth("value", "+1000") }},
		{"value/negative", func(d *draft) { d.wire = setAuth("value", "-1000") }},
		{"value/exponent", func(d *draft) { d.wire = setAuth("value", "1e3") }},
		{"value/fraction", func(d *draft) { d.wire = setAuth("value", "1000.0") }},
		{"value/empty", func(d *draft) { d.wire = setAuth("value", "") }},
		{"value/above-uint256", func(d *draft) { d.wire = setAuth("value", new(big.Int).Add(maxUint256, big.NewInt(1)).String()) }},
		{"value/absent", func(d *draft) { d.wire = func(env map[string]any) { delete(authorizationOf(env), "value") } }},
		{"value/key-case", func(d *draft) { d.text = replaceOnce(`"value":`, `"Value":`) }},
		{"value/case-twin", func(d *draft) { d.text = replaceOnce(`"value":`, `"VALUE":"1","value":`) }},
		{"value/repeated", func(d *draft) { d.text = replaceOnce(`"value":`, `"value":"1","value":`) }},

		{"validAfter/next-second", func(d *draft) { d.auth.ValidAfter = at(now + 1) }},
		{"validAfter/tampered", func(d *draft) { d.wire = setAuth("validAfter", "1") }},
		{"validAfter/leading-zero", func(d *draft) { d.wire = setAuth("validAfter", "00") }},
		{"validAfter/json-number", func(d *draft) { d.wire = setAuth("validAfter", 0) }},

		{"validBefore/one-short-of-margin", func(d *draft) { d.auth.ValidBefore = at(now + 5) }},
		{"validBefore/now", func(d *draft) { d.auth.ValidBefore = at(now) }},
		{"validBefore/past", func(d *draft) { d.auth.ValidBefore = at(now - 60) }},
		{"validBefore/zero", func(d *draft) { d.auth.ValidBefore = at(0) }},
		{"validBefore/tampered", func(d *draft) { d.wire = setAuth("validBefore", d.auth.ValidBefore.String()+"0") }},
		{"validBefore/hex", func(d *draft) { d.wire = setAuth("validBefore", "0x"+d.auth.ValidBefore.Text(16)) }},

		{"nonce/tampered", func(d *draft) { d.wire = setAuth("nonce", nonceFor("tampered").Hex()) }},
		{"nonce/used", func(d *draft) { d.auth.Nonce = e.usedNonce }},
		{"nonce/31-bytes", func(d *draft) { d.wire = setAuth("nonce", d.auth.Nonce.Hex()[:64]) }},
		{"nonce/33-bytes", func(d *draft) { d.wire = setAuth("nonce", d.auth.Nonce.Hex()+"00") }},
		{"nonce/no-prefix", func(d *draft) { d.wire = setAuth("nonce", d.auth.Nonce.Hex()[2:]) }},
		{"nonce/absent", func(d *draft) { d.wire = func(env map[string]any) { delete(authorizationOf(env), "nonce") } }},
	}
}

// signatureCases change the signature or what it was made for.
func (e *diffEnv) signatureCases(other common.Address) []diffCase {
	setSig := func(v any) func(env map[string]any) {
		return func(env map[string]any) { member(env, "payload")["signature"] = v }
	}
	return []diffCase{
		{"signature/other-key", func(d *draft) { d.key = keyFor("other") }},
		{"signature/domain-name-other", func(d *draft) { d.domain.Name = "Other Coin" }},
		{"signature/domain-version-other", func(d *draft) { d.domain.Version = "1" }},
		{"signature/domain-chain-other", func(d *draft) { d.domain.ChainID = big.NewInt(1) }},
		{"signature/domain-contract-other", func(d *draft) { d.domain.VerifyingContract = other }},
		{"signature/high-s", func(d *draft) { d.sig = highS }},
		{"signature/v-parity", func(d *draft) { d.sig = vAsParity }},
		{"signature/v-29", func(d *draft) { d.sig = withV(29) }},
		{"signature/r-zero", func(d *draft) { d.sig = zeroR }},
		{"signature/64-bytes", func(d *draft) { d.sig = resize(64) }},
		{"signature/66-bytes", func(d *draft) { d.sig = resize(66) }},
		{"signature/empty", func(d *draft) { d.wire = setSig("") }},
		{"signature/absent", func(d *draft) { d.wire = func(env map[string]any) { delete(member(env, "payload"), "signature") } }},
		{"signature/no-prefix", func(d *draft) {
			d.wire = func(env map[string]any) {
				p := member(env, "payload")
				p["signature"] = strings.TrimPrefix(p["signature"].(string), "0x")
			}
		}},
		{"signature/not-hex", func(d *draft) { d.wire = setSig("0x" + strings.Repeat("zz", 65)) }},
	}
}

// offerCases change the seller's own offer, and the payer pays it as offered: what a seller's
// configuration can get wrong.
func (e *diffEnv) offerCases() []diffCase {
	return []diffCase{
		{"offer/extra-name-absent", func(d *draft) { d.offer.Extra = map[string]any{"version": d.domain.Version} }},
		{"offer/extra-version-absent", func(d *draft) { d.offer.Extra = map[string]any{"name": d.domain.Name} }},
		{"offer/extra-name-not-the-token's", func(d *draft) {
			d.domain.Name = "Other Coin"
			d.offer.Extra = map[string]any{"name": d.domain.Name, "version": d.domain.Version}
		}},
		{"offer/extra-version-not-the-token's", func(d *draft) {
			d.domain.Version = "1"
			d.offer.Extra = map[string]any{"name": d.domain.Name, "version": d.domain.Version}
		}},
		{"offer/asset-without-code", func(d *draft) {
			d.domain.VerifyingContract = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
			d.offer.Asset = d.domain.VerifyingContract.Hex()
		}},
	}
}

func concatCases(lists ...[]diffCase) []diffCase {
	var out []diffCase
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
