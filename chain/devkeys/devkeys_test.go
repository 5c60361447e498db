package devkeys

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Addresses every EVM dev tool prints for TestMnemonic.
var knownAddresses = map[int]string{
	0: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
	1: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
	2: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
	9: "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
}

const knownKey0 = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

func TestDeriveKnownAddresses(t *testing.T) {
	for index, want := range knownAddresses {
		acc, err := Derive(TestMnemonic, index)
		if err != nil {
			t.Fatalf("Derive(%d): %v", index, err)
		}
		if acc.Address != common.HexToAddress(want) {
			t.Errorf("index %d: address %s, want %s", index, acc.Address, want)
		}
		if acc.Index != index {
			t.Errorf("index %d: Account.Index = %d", index, acc.Index)
		}
		if got := crypto.PubkeyToAddress(acc.Key.PublicKey); got != acc.Address {
			t.Errorf("index %d: key belongs to %s, not %s", index, got, acc.Address)
		}
	}
}

func TestDeriveKnownPrivateKey(t *testing.T) {
	acc, err := Derive(TestMnemonic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(crypto.FromECDSA(acc.Key)); got != knownKey0 {
		t.Fatalf("private key 0 = %s, want %s", got, knownKey0)
	}
}

func TestDevAccountsMatchDerive(t *testing.T) {
	accs := DevAccounts(10)
	if len(accs) != 10 {
		t.Fatalf("DevAccounts(10) returned %d accounts", len(accs))
	}
	for index, want := range knownAddresses {
		if accs[index].Address != common.HexToAddress(want) {
			t.Errorf("DevAccounts[%d] = %s, want %s", index, accs[index].Address, want)
		}
	}
	for i, acc := range accs {
		if acc.Index != i {
			t.Errorf("DevAccounts[%d].Index = %d", i, acc.Index)
		}
	}
	// A smaller request after a larger one is served from the cache and
	// must agree with it; mutating the returned slice must not leak back.
	first := DevAccounts(3)
	first[0] = Account{}
	if again := DevAccounts(1); again[0].Address != accs[0].Address {
		t.Fatalf("cache was modified through a returned slice")
	}
	if DevAccounts(0) != nil || DevAccounts(-1) != nil {
		t.Fatal("DevAccounts(n <= 0) should return nil")
	}
}

func TestDeriveNormalizesWhitespace(t *testing.T) {
	acc, err := Derive("  test test test test\ttest test test test test test test\njunk ", 0)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Address != common.HexToAddress(knownAddresses[0]) {
		t.Fatalf("address %s, want %s", acc.Address, knownAddresses[0])
	}
}

func TestDeriveOtherMnemonicDiffers(t *testing.T) {
	// A different (24-word) phrase must give different accounts.
	phrase := "abandon abandon abandon abandon abandon abandon abandon abandon " +
		"abandon abandon abandon abandon abandon abandon abandon abandon " +
		"abandon abandon abandon abandon abandon abandon abandon art"
	acc, err := Derive(phrase, 0)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Address == common.HexToAddress(knownAddresses[0]) {
		t.Fatal("different mnemonic produced the TestMnemonic address")
	}
}

func TestDeriveRejectsBadInput(t *testing.T) {
	cases := []struct {
		name     string
		mnemonic string
		index    int
		want     error
	}{
		{"empty", "", 0, ErrInvalidMnemonic},
		{"eleven words", "test test test test test test test test test test junk", 0, ErrInvalidMnemonic},
		{"thirteen words", TestMnemonic + " test", 0, ErrInvalidMnemonic},
		{"uppercase", "TEST test test test test test test test test test test junk", 0, ErrInvalidMnemonic},
		{"digits", "test test test test test test test test test test test 1234", 0, ErrInvalidMnemonic},
		{"negative index", TestMnemonic, -1, ErrInvalidIndex},
		{"hardened index", TestMnemonic, 1 << 31, ErrInvalidIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Derive(tc.mnemonic, tc.index)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDerive(f *testing.F) {
	f.Add(TestMnemonic, 0)
	f.Add(TestMnemonic, 9)
	f.Add("test test test", 1)
	f.Add("", -5)
	f.Add("a b c d e f g h i j k l", 1<<31-1)
	f.Fuzz(func(t *testing.T, mnemonic string, index int) {
		acc, err := Derive(mnemonic, index)
		if err != nil {
			if !errors.Is(err, ErrInvalidMnemonic) && !errors.Is(err, ErrInvalidIndex) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if got := crypto.PubkeyToAddress(acc.Key.PublicKey); got != acc.Address {
			t.Fatalf("key belongs to %s, not %s", got, acc.Address)
		}
		again, err := Derive(mnemonic, index)
		if err != nil || again.Address != acc.Address {
			t.Fatalf("derivation is not deterministic: %v %s %s", err, again.Address, acc.Address)
		}
	})
}
