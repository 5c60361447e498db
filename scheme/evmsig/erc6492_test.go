package evmsig

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// wrap6492 builds an ERC-6492 signature with go-ethereum's ABI encoder.
func wrap6492(t testing.TB, factory common.Address, calldata, sig []byte) []byte {
	t.Helper()
	addrT, _ := abi.NewType("address", "", nil)
	bytesT, _ := abi.NewType("bytes", "", nil)
	body, err := abi.Arguments{{Type: addrT}, {Type: bytesT}, {Type: bytesT}}.Pack(factory, calldata, sig)
	if err != nil {
		t.Fatal(err)
	}
	return append(body, erc6492Magic...)
}

func TestUnwrapERC6492(t *testing.T) {
	inner := bytes.Repeat([]byte{0xab}, 65)
	long := bytes.Repeat([]byte{0xcd}, 300)
	factory := common.HexToAddress("0x0000000000000000000000000000000000000fac")
	for name, tc := range map[string]struct {
		sig     []byte
		inner   []byte
		wrapped bool
	}{
		"plain 65 bytes":       {inner, inner, false},
		"plain shorter":        {[]byte{1, 2, 3}, []byte{1, 2, 3}, false},
		"wrapped":              {wrap6492(t, factory, []byte{1, 2, 3, 4}, inner), inner, true},
		"wrapped, long inner":  {wrap6492(t, factory, nil, long), long, true},
		"wrapped, empty inner": {wrap6492(t, factory, long, nil), []byte{}, true},
	} {
		got, wrapped, err := UnwrapERC6492(tc.sig)
		if err != nil || wrapped != tc.wrapped || !bytes.Equal(got, tc.inner) {
			t.Errorf("%s: %x, %v, %v; want %x, %v", name, got, wrapped, err, tc.inner, tc.wrapped)
		}
	}
	good := wrap6492(t, factory, []byte{1}, inner)
	huge := append([]byte(nil), good...)
	huge[64] = 1 // the inner signature's offset above 2^64
	past := append([]byte(nil), good...)
	past[95] = 0xff // the inner signature's offset past the end
	for name, sig := range map[string][]byte{
		"marker alone":     erc6492Magic,
		"head cut short":   append(make([]byte, 64), erc6492Magic...),
		"offset too large": huge,
		"offset past end":  past,
		"length past end":  append(good[:len(good)-32-32], erc6492Magic...),
	} {
		if _, wrapped, err := UnwrapERC6492(sig); !wrapped || !errors.Is(err, ErrERC6492Wrapper) {
			t.Errorf("%s: wrapped %v, %v; want ErrERC6492Wrapper", name, wrapped, err)
		}
	}
}

// FuzzUnwrapERC6492: any input is answered without a panic, and an inner signature lies within
// the input.
func FuzzUnwrapERC6492(f *testing.F) {
	f.Add(wrap6492(f, common.Address{}, []byte{1, 2}, bytes.Repeat([]byte{7}, 65)))
	f.Add(erc6492Magic)
	f.Add(bytes.Repeat([]byte{0xab}, 65))
	f.Fuzz(func(t *testing.T, sig []byte) {
		inner, wrapped, err := UnwrapERC6492(sig)
		if err != nil {
			return
		}
		if !wrapped && !bytes.Equal(inner, sig) {
			t.Fatalf("unwrapped signature changed: %x", inner)
		}
		if wrapped && len(inner) > len(sig)-len(erc6492Magic)-96 {
			t.Fatalf("inner signature of %d bytes from %d", len(inner), len(sig))
		}
	})
}
