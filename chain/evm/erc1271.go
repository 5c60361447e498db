package evm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
)

// erc1271Selector is isValidSignature(bytes32,bytes), and also the magic value an account
// answers for a signature it accepts.
var erc1271Selector = [4]byte{0x16, 0x26, 0xba, 0x7e}

// IsValidSignatureGas bounds the gas of one isValidSignature call. A wallet checking a passkey
// (P-256) signature in Solidity needs a few hundred thousand; a contract written to burn the
// node's time gets no more than this per payment it sends. The reference facilitator sets no
// bound of its own (only the node's eth_call cap, 50M gas on geth): a wallet that needs more than
// this is refused here and accepted there, on purpose.
const IsValidSignatureGas = 1_000_000

// IsValidSignature asks account, through ERC-1271, whether sig is its signature of digest. An
// account without code, a call that reverts or runs out of gas, and any answer but the magic
// value all mean no. Only a chain that cannot be reached, or a caller that gave up, is an error.
func (c *Client) IsValidSignature(ctx context.Context, account common.Address, digest common.Hash, sig []byte) (bool, error) {
	data := packIsValidSignature(digest, sig)
	out, err := readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) ([]byte, error) {
		return eth.CallContract(ctx, ethereum.CallMsg{To: &account, Data: data, Gas: IsValidSignatureGas}, nil)
	})
	switch {
	case ctx.Err() != nil:
		return false, fmt.Errorf("evm: isValidSignature: %w", ctx.Err())
	case errors.Is(err, ErrUnavailable):
		return false, fmt.Errorf("evm: isValidSignature: %w", err)
	case err != nil:
		// The node answered about the call itself: the account refused (revert, out of gas).
		return false, nil
	}
	return len(out) >= 4 && [4]byte(out[:4]) == erc1271Selector, nil
}

// packIsValidSignature is the calldata of isValidSignature(digest, sig).
func packIsValidSignature(digest common.Hash, sig []byte) []byte {
	padded := (len(sig) + 31) / 32 * 32
	data := make([]byte, 4+32+32+32+padded)
	copy(data, erc1271Selector[:])
	copy(data[4:], digest[:])
	binary.BigEndian.PutUint64(data[4+32+24:], 64) // the bytes start after the two head words
	binary.BigEndian.PutUint64(data[4+64+24:], uint64(len(sig)))
	copy(data[4+96:], sig)
	return data
}
