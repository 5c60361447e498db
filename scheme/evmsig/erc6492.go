package evmsig

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// erc6492Magic ends every ERC-6492 signature.
var erc6492Magic = bytes.Repeat([]byte{0x64, 0x92}, 16)

// ErrERC6492Wrapper is an ERC-6492 signature whose wrapper does not decode.
var ErrERC6492Wrapper = errors.New("signature ends with the ERC-6492 marker but its wrapper does not decode")

// UnwrapERC6492 reads an ERC-6492 signature: abi.encode(address factory, bytes factoryCalldata,
// bytes signature) followed by the 32-byte marker 0x6492…6492, which a smart wallet sends when
// it may not be deployed yet, so that a verifier can deploy it first. It returns the inner
// signature and true, or sig itself and false when sig carries no marker. A marked signature
// whose encoding is out of bounds is ErrERC6492Wrapper.
func UnwrapERC6492(sig []byte) (inner []byte, wrapped bool, err error) {
	if len(sig) < len(erc6492Magic) || !bytes.Equal(sig[len(sig)-len(erc6492Magic):], erc6492Magic) {
		return sig, false, nil
	}
	body := sig[:len(sig)-len(erc6492Magic)]
	// Head: the factory's word, then the offsets of the two byte strings.
	if len(body) < 3*32 {
		return nil, true, ErrERC6492Wrapper
	}
	for _, offsetWord := range []int{32, 64} {
		if _, ok := abiBytesAt(body, body[offsetWord:offsetWord+32]); !ok {
			return nil, true, ErrERC6492Wrapper
		}
	}
	inner, _ = abiBytesAt(body, body[64:96])
	return inner, true, nil
}

// abiBytesAt reads the ABI-encoded byte string whose offset into body is the word at.
func abiBytesAt(body, word []byte) ([]byte, bool) {
	offset, ok := abiSmallUint(word)
	if !ok || offset > uint64(len(body)) || uint64(len(body))-offset < 32 {
		return nil, false
	}
	n, ok := abiSmallUint(body[offset : offset+32])
	start := offset + 32
	if !ok || n > uint64(len(body))-start {
		return nil, false
	}
	return body[start : start+n], true
}

// abiSmallUint reads a 32-byte word that must hold an unsigned integer below 2^64.
func abiSmallUint(word []byte) (uint64, bool) {
	if !bytes.Equal(word[:24], zeroWord[:24]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(word[24:]), true
}
