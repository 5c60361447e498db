package keyfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestWriteRead(t *testing.T) {
	key, _ := crypto.GenerateKey()
	path := filepath.Join(t.TempDir(), "k")
	if err := Write(path, key); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	got, err := Read(path)
	if err != nil || !got.Equal(key) {
		t.Fatalf("read back %v", err)
	}
	if err := Write(path, key); err == nil {
		t.Fatal("overwrote an existing key file")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	f.Add("zz")
	f.Add("0x" + "00" + "00000000000000000000000000000000000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := Parse(s); err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}
