package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestPaymentIdentifierDeclarationMatchesTheReference(t *testing.T) {
	// The object the reference's declarePaymentIdentifierExtension(false) returns, as JSON.
	const reference = `{"info":{"required":false},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema",
		"type":"object","properties":{"required":{"type":"boolean"},"id":{"type":"string","minLength":16,
		"maxLength":128,"pattern":"^[a-zA-Z0-9_-]+$"}},"required":["required"]}}`
	for _, required := range []bool{false, true} {
		var got, want any
		if err := json.Unmarshal(PaymentIdentifierDeclaration(required), &got); err != nil {
			t.Fatal(err)
		}
		ref := strings.Replace(reference, `"required":false`, `"required":`+map[bool]string{true: "true", false: "false"}[required], 1)
		if err := json.Unmarshal([]byte(ref), &want); err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("required=%v:\n got %s\nwant %s", required, g, w)
		}
	}
}

func TestValidPaymentID(t *testing.T) {
	good := []string{"pay_7d5d747be160e280504c099d984bcfe0", "abcdefghijklmnop", strings.Repeat("A-_9", 32), NewPaymentID()}
	bad := []string{"", "short_id_15char", strings.Repeat("a", 129), "pay_7d5d747be160e2805 04c", "pay_7d5d747be160e280.", "pay_ünicode_ünicode", "pay_7d5d747be160e2\x00"}
	for _, id := range good {
		if !ValidPaymentID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range bad {
		if ValidPaymentID(id) {
			t.Errorf("%q accepted", id)
		}
	}
	if a, b := NewPaymentID(), NewPaymentID(); a == b || len(a) != 36 || !strings.HasPrefix(a, "pay_") {
		t.Errorf("NewPaymentID: %q, %q", a, b)
	}
}

func TestPaymentIdentifier(t *testing.T) {
	ext := func(s string) map[string]json.RawMessage {
		return map[string]json.RawMessage{ExtensionPaymentIdentifier: json.RawMessage(s), "bazaar": json.RawMessage(`{}`)}
	}
	const id = "pay_7d5d747be160e280504c099d984bcfe0"
	cases := []struct {
		name string
		ext  map[string]json.RawMessage
		want string
		bad  bool
	}{
		{"no extensions", nil, "", false},
		{"other extensions only", map[string]json.RawMessage{"bazaar": json.RawMessage(`{}`)}, "", false},
		{"declaration echoed without an id", ext(string(PaymentIdentifierDeclaration(false))), "", false},
		{"id", ext(`{"info":{"required":false,"id":"` + id + `"},"schema":{}}`), id, false},
		{"id without required", ext(`{"info":{"id":"` + id + `"}}`), id, false},
		{"null id", ext(`{"info":{"required":false,"id":null}}`), "", false},
		{"not an object", ext(`"pay"`), "", false},
		{"info not an object", ext(`{"info":"x"}`), "", false},
		{"escaped id", ext(`{"info":{"id":"pay_7d5d747be160e280\u0035"}}`), "pay_7d5d747be160e2805", false},
		{"too short", ext(`{"info":{"id":"pay_123"}}`), "", true},
		{"too long", ext(`{"info":{"id":"` + strings.Repeat("a", 129) + `"}}`), "", true},
		{"bad character", ext(`{"info":{"id":"pay_7d5d747be160e280/04c"}}`), "", true},
		{"number", ext(`{"info":{"id":1234567890123456789}}`), "", true},
	}
	for _, tc := range cases {
		got, err := PaymentIdentifier(tc.ext)
		if got != tc.want || (err != nil) != tc.bad || (err != nil && !errors.Is(err, ErrBadPaymentID)) {
			t.Errorf("%s: %q %v", tc.name, got, err)
		}
	}
}

func TestWithPaymentIdentifier(t *testing.T) {
	declared := map[string]json.RawMessage{
		ExtensionPaymentIdentifier: PaymentIdentifierDeclaration(true),
		"bazaar":                   json.RawMessage(`{"info":{"x":1}}`),
	}
	const id = "pay_0123456789abcdef0123456789abcdef"
	out, ok, err := WithPaymentIdentifier(declared, id)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got, err := PaymentIdentifier(out); got != id || err != nil {
		t.Fatalf("echoed id %q %v", got, err)
	}
	if string(out["bazaar"]) != `{"info":{"x":1}}` {
		t.Errorf("other extension changed: %s", out["bazaar"])
	}
	var echoed struct {
		Info   map[string]any
		Schema map[string]any
	}
	if err := json.Unmarshal(out[ExtensionPaymentIdentifier], &echoed); err != nil || echoed.Info["required"] != true || echoed.Schema["type"] != "object" {
		t.Errorf("echo lost the declaration: %s", out[ExtensionPaymentIdentifier])
	}
	if got, _ := PaymentIdentifier(declared); got != "" {
		t.Error("the server's declaration was modified in place")
	}

	for name, d := range map[string]map[string]json.RawMessage{
		"not declared":         {"bazaar": json.RawMessage(`{}`)},
		"required not boolean": {ExtensionPaymentIdentifier: json.RawMessage(`{"info":{"required":"yes"}}`)},
		"no info":              {ExtensionPaymentIdentifier: json.RawMessage(`{"schema":{}}`)},
	} {
		if out, ok, err := WithPaymentIdentifier(d, id); ok || err != nil || len(out) != len(d) {
			t.Errorf("%s: %v %v %v", name, out, ok, err)
		}
	}
	if _, _, err := WithPaymentIdentifier(declared, "short"); !errors.Is(err, ErrBadPaymentID) {
		t.Errorf("invalid id: %v", err)
	}
}

func TestPaymentDigestIgnoresEncoding(t *testing.T) {
	a := `{"x402Version":2,"accepted":{"scheme":"exact","network":"eip155:1","amount":"1000"},"payload":{"sig":"0xab","n":[1,2.50,{"z":null,"a":true}]}}`
	b := "{ \"payload\" : {\"n\":[1, 2.50,{\"a\":true,\"z\":null}],\"sig\":\"0xab\"},\n\"accepted\":{\"amount\":\"1000\",\"network\":\"eip155:1\",\"scheme\":\"exact\"},\"x402Version\":2}"
	da, err := PaymentDigest(base64.StdEncoding.EncodeToString([]byte(a)), 0)
	if err != nil {
		t.Fatal(err)
	}
	db, err := PaymentDigest(base64.RawStdEncoding.EncodeToString([]byte(b)), 0)
	if err != nil || da != db {
		t.Fatalf("same payment, different digests (%v)", err)
	}
	for _, other := range []string{
		strings.Replace(a, `"1000"`, `"1001"`, 1),
		strings.Replace(a, `2.50`, `2.5`, 1), // numbers are compared as written
		strings.Replace(a, `"0xab"`, `"0xAB"`, 1),
	} {
		d, err := PaymentDigest(base64.StdEncoding.EncodeToString([]byte(other)), 0)
		if err != nil || d == da {
			t.Errorf("%s: same digest (%v)", other, err)
		}
	}
	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte(`{"a":1,"a":2}`))} {
		if _, err := PaymentDigest(bad, 0); !IsMalformed(err) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzPaymentIdentifier(f *testing.F) {
	f.Add(`{"info":{"required":false,"id":"pay_7d5d747be160e280504c099d984bcfe0"}}`)
	f.Add(string(PaymentIdentifierDeclaration(true)))
	f.Add(`{"info":{"id":"\ud800aaaaaaaaaaaaaaaaa"}}`)
	f.Add(`{"info":{"id":12}}`)
	f.Add(`{"info":`)
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := PaymentIdentifier(map[string]json.RawMessage{ExtensionPaymentIdentifier: json.RawMessage(raw)})
		if err != nil && !errors.Is(err, ErrBadPaymentID) {
			t.Fatalf("unclassified error %v", err)
		}
		if id != "" && !ValidPaymentID(id) {
			t.Fatalf("returned an invalid id %q", id)
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	f.Add(`{"b":1,"a":[true,null,"x\u00e9"]}`)
	f.Add(`[1e400, -0, 0.000]`)
	f.Add(`"\ud800"`)
	f.Add(`{"a":1,"A":2}`)
	f.Fuzz(func(t *testing.T, raw string) {
		canon, err := CanonicalJSON([]byte(raw))
		if err != nil {
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again, err := CanonicalJSON(canon)
		if err != nil || string(again) != string(canon) {
			t.Fatalf("canonical form is not stable: %q -> %q (%v)", canon, again, err)
		}
	})
}
