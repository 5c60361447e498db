// Package keyfile reads and writes private keys stored as one line of 0x-hex in a file readable
// only by its owner.
package keyfile

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
)

// Read loads the private key in path.
func Read(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	key, err := Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// Parse reads a 0x-hex (or bare hex) secp256k1 private key.
func Parse(s string) (*ecdsa.PrivateKey, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) != 64 {
		return nil, errors.New("a private key is 32 bytes written as 64 hex digits")
	}
	key, err := crypto.HexToECDSA(s)
	if err != nil {
		return nil, errors.New("not a valid secp256k1 private key")
	}
	return key, nil
}

// Write stores key in path with mode 0600. It refuses to overwrite an existing file.
func Write(path string, key *ecdsa.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "0x%x\n", crypto.FromECDSA(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
