package devchain

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// asm joins hex-encoded instruction chunks (comments live next to each chunk).
func asm(chunks ...string) []byte {
	b, err := hex.DecodeString(strings.Join(chunks, ""))
	if err != nil {
		panic(err)
	}
	return b
}

// storeRuntime is the runtime code of the test contract (39 bytes):
//
//	empty calldata   -> returns slot 0 as a 32-byte word                 ("get")
//	32-byte calldata -> slot 0 = word, slot 1 = msg.sender, LOG0(word)   ("set")
var storeRuntime = asm(
	"36",   // 00 CALLDATASIZE
	"15",   // 01 ISZERO
	"601b", // 02 PUSH1 0x1b (get)
	"57",   // 04 JUMPI             no calldata -> get
	"6000", // 05 PUSH1 0
	"35",   // 07 CALLDATALOAD      word = calldata[0:32]
	"6000", // 08 PUSH1 0
	"55",   // 0a SSTORE            slot0 = word
	"33",   // 0b CALLER
	"6001", // 0c PUSH1 1
	"55",   // 0e SSTORE            slot1 = msg.sender
	"6000", // 0f PUSH1 0
	"35",   // 11 CALLDATALOAD
	"6000", // 12 PUSH1 0
	"52",   // 14 MSTORE            mem[0:32] = word
	"6020", // 15 PUSH1 32
	"6000", // 17 PUSH1 0
	"a0",   // 19 LOG0              log data = word
	"00",   // 1a STOP
	"5b",   // 1b JUMPDEST          get:
	"6000", // 1c PUSH1 0
	"54",   // 1e SLOAD
	"6000", // 1f PUSH1 0
	"52",   // 21 MSTORE            mem[0:32] = slot0
	"6020", // 22 PUSH1 32
	"6000", // 24 PUSH1 0
	"f3",   // 26 RETURN            return mem[0:32]
)

// storeConstructor is the creation code prefix (33 bytes). It is followed by
// storeRuntime and then the 32-byte constructor argument.
var storeConstructor = asm(
	"6020", // 00 PUSH1 32          length
	"6048", // 02 PUSH1 0x48        offset of the argument (33 + 39)
	"6000", // 04 PUSH1 0           memory offset
	"39",   // 06 CODECOPY          mem[0:32] = argument
	"6000", // 07 PUSH1 0
	"51",   // 09 MLOAD
	"6000", // 0a PUSH1 0
	"55",   // 0c SSTORE            slot0 = argument
	"30",   // 0d ADDRESS
	"6002", // 0e PUSH1 2
	"55",   // 10 SSTORE            slot2 = address(this)
	"46",   // 11 CHAINID
	"6003", // 12 PUSH1 3
	"55",   // 14 SSTORE            slot3 = block.chainid
	"6027", // 15 PUSH1 39          runtime length
	"6021", // 17 PUSH1 0x21        runtime offset (33)
	"6000", // 19 PUSH1 0
	"39",   // 1b CODECOPY          mem[0:39] = runtime
	"6027", // 1c PUSH1 39
	"6000", // 1e PUSH1 0
	"f3",   // 20 RETURN            deploy mem[0:39]
)

// storeInitCode returns the full creation code of the test contract with
// constructor argument arg.
func storeInitCode(arg uint64) []byte {
	code := append(append([]byte{}, storeConstructor...), storeRuntime...)
	return append(code, common.BigToHash(new(big.Int).SetUint64(arg)).Bytes()...)
}

// revertInitCode deploys runtime code that always reverts with no data.
var revertInitCode = asm(
	"6005", // 00 PUSH1 5            runtime length
	"600c", // 02 PUSH1 12           runtime offset
	"6000", // 04 PUSH1 0
	"39",   // 06 CODECOPY
	"6005", // 07 PUSH1 5
	"6000", // 09 PUSH1 0
	"f3",   // 0b RETURN
	"6000", // runtime: PUSH1 0
	"6000", //          PUSH1 0
	"fd",   //          REVERT
)

func TestHandAssembledLayout(t *testing.T) {
	if len(storeRuntime) != 0x27 {
		t.Fatalf("runtime is %d bytes, offsets assume 39", len(storeRuntime))
	}
	if len(storeConstructor) != 0x21 {
		t.Fatalf("constructor is %d bytes, offsets assume 33", len(storeConstructor))
	}
}
