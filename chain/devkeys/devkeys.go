// Package devkeys derives Ethereum accounts from a BIP-39 mnemonic along the
// standard path m/44'/60'/0'/0/i, and exposes the well-known development
// accounts of TestMnemonic that every EVM dev tool pre-funds.
//
// It is meant for the embedded dev chain and tests only. It imports nothing
// from the rest of the project and does no I/O.
package devkeys

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestMnemonic is the public, well-known development mnemonic used by Hardhat,
// Foundry (anvil) and most other EVM dev tools. Its private keys are published
// everywhere: accounts derived from it are for local development only and
// must never hold real funds on any real chain.
const TestMnemonic = "test test test test test test test test test test test junk"

// Sentinel errors returned by Derive.
var (
	// ErrInvalidMnemonic means the phrase does not look like a BIP-39 mnemonic.
	ErrInvalidMnemonic = errors.New("devkeys: invalid mnemonic")
	// ErrInvalidIndex means the account index is outside [0, 2^31).
	ErrInvalidIndex = errors.New("devkeys: invalid account index")
)

// Account is one derived account. Key is shared with other callers when it
// comes from DevAccounts, so it must not be modified.
type Account struct {
	Index   int
	Address common.Address
	Key     *ecdsa.PrivateKey
}

// ethereumAccountPath is m/44'/60'/0'/0, the parent of every account key.
var ethereumAccountPath = []uint32{
	44 | hardenedOffset,
	60 | hardenedOffset,
	0 | hardenedOffset,
	0,
}

// Derive returns the account at m/44'/60'/0'/0/index of mnemonic, using an
// empty BIP-39 passphrase.
func Derive(mnemonic string, index int) (Account, error) {
	parent, err := accountParent(mnemonic)
	if err != nil {
		return Account{}, err
	}
	return deriveAccount(parent, index)
}

// DevAccounts returns the first n accounts of TestMnemonic (none for n <= 0).
// Results are cached, so repeated calls are cheap.
func DevAccounts(n int) []Account {
	if n <= 0 {
		return nil
	}
	devCache.mu.Lock()
	defer devCache.mu.Unlock()
	if devCache.parent == nil {
		parent, err := accountParent(TestMnemonic)
		if err != nil {
			// TestMnemonic is a valid constant; failing here is a bug.
			panic(fmt.Sprintf("devkeys: deriving test mnemonic: %v", err))
		}
		devCache.parent = parent
	}
	for i := len(devCache.accounts); i < n; i++ {
		acc, err := deriveAccount(devCache.parent, i)
		if err != nil {
			// Only reachable for indexes that BIP-32 marks unusable, which
			// none of the first accounts of TestMnemonic are.
			panic(fmt.Sprintf("devkeys: deriving test account %d: %v", i, err))
		}
		devCache.accounts = append(devCache.accounts, acc)
	}
	return append([]Account(nil), devCache.accounts[:n]...)
}

var devCache struct {
	mu       sync.Mutex
	parent   *extendedKey
	accounts []Account
}

// accountParent derives the extended key at m/44'/60'/0'/0 from mnemonic.
func accountParent(mnemonic string) (*extendedKey, error) {
	phrase, err := normalizeMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	key, err := masterKey(mnemonicSeed(phrase, ""))
	if err != nil {
		return nil, err
	}
	for _, i := range ethereumAccountPath {
		if key, err = key.child(i); err != nil {
			return nil, err
		}
	}
	return key, nil
}

func deriveAccount(parent *extendedKey, index int) (Account, error) {
	if index < 0 || int64(index) >= int64(hardenedOffset) {
		return Account{}, fmt.Errorf("%w: %d", ErrInvalidIndex, index)
	}
	child, err := parent.child(uint32(index))
	if err != nil {
		return Account{}, err
	}
	key, err := child.privateKey()
	if err != nil {
		return Account{}, err
	}
	return Account{Index: index, Address: crypto.PubkeyToAddress(key.PublicKey), Key: key}, nil
}

// normalizeMnemonic checks the word count and collapses whitespace. Only the
// English wordlist is supported (lowercase ASCII words), which makes BIP-39's
// NFKD normalisation a no-op. The wordlist checksum is not verified.
func normalizeMnemonic(mnemonic string) (string, error) {
	words := strings.Fields(mnemonic)
	switch len(words) {
	case 12, 15, 18, 21, 24:
	default:
		return "", fmt.Errorf("%w: %d words, want 12, 15, 18, 21 or 24", ErrInvalidMnemonic, len(words))
	}
	for _, w := range words {
		for _, r := range w {
			if r < 'a' || r > 'z' {
				return "", fmt.Errorf("%w: word %q is not lowercase English", ErrInvalidMnemonic, w)
			}
		}
	}
	return strings.Join(words, " "), nil
}
