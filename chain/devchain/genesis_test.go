package devchain

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"
)

var (
	storeAddr  = common.HexToAddress("0x5700000000000000000000000000000000000001")
	setterAddr = common.HexToAddress("0x5e77e40000000000000000000000000000000002")
)

func storeContract(arg uint64, calls ...GenesisCall) GenesisContract {
	return GenesisContract{Address: storeAddr, InitCode: storeInitCode(arg), Calls: calls}
}

func setCall(value uint64) GenesisCall {
	return GenesisCall{From: setterAddr, Data: common.BigToHash(new(big.Int).SetUint64(value)).Bytes()}
}

func TestBuildGenesisPlacesContract(t *testing.T) {
	cfg := Config{ChainID: 4242, Contracts: []GenesisContract{storeContract(7, setCall(42))}}.withDefaults()
	genesis, err := buildGenesis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	account, ok := genesis.Alloc[storeAddr]
	if !ok {
		t.Fatal("contract missing from genesis alloc")
	}
	if string(account.Code) != string(storeRuntime) {
		t.Fatalf("code = %x, want runtime %x", account.Code, storeRuntime)
	}
	if account.Nonce != 1 {
		t.Errorf("nonce = %d, want 1", account.Nonce)
	}
	want := map[common.Hash]common.Hash{
		common.BigToHash(big.NewInt(0)): common.BigToHash(big.NewInt(42)),
		common.BigToHash(big.NewInt(1)): common.BytesToHash(setterAddr.Bytes()),
		common.BigToHash(big.NewInt(2)): common.BytesToHash(storeAddr.Bytes()),
		common.BigToHash(big.NewInt(3)): common.BigToHash(big.NewInt(4242)),
	}
	if len(account.Storage) != len(want) {
		t.Fatalf("storage = %v, want %v", account.Storage, want)
	}
	for slot, value := range want {
		if account.Storage[slot] != value {
			t.Errorf("slot %s = %s, want %s", slot, account.Storage[slot], value)
		}
	}
	if _, ok := genesis.Alloc[setterAddr]; ok {
		t.Error("the caller of a genesis call should not be added to genesis")
	}
	if genesis.Config.ChainID.Uint64() != 4242 || params.AllDevChainProtocolChanges.ChainID.Uint64() != 1337 {
		t.Error("chain id not applied, or the shared dev config was mutated")
	}
}

func TestBuildGenesisIsDeterministic(t *testing.T) {
	cfg := Config{
		Alloc:     map[common.Address]*big.Int{setterAddr: big.NewInt(1e18)},
		Contracts: []GenesisContract{storeContract(7, setCall(42))},
	}.withDefaults()
	first, err := buildGenesis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := buildGenesis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := first.ToBlock().Hash(), second.ToBlock().Hash(); a != b {
		t.Fatalf("genesis hash differs between builds: %s vs %s", a, b)
	}
	cfg.Contracts = []GenesisContract{storeContract(7, setCall(43))}
	third, err := buildGenesis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.ToBlock().Hash() == third.ToBlock().Hash() {
		t.Fatal("a different genesis call should change the genesis hash")
	}
}

func TestBuildGenesisRejectsBrokenContracts(t *testing.T) {
	revertAddr := common.HexToAddress("0xbad0000000000000000000000000000000000001")
	cases := map[string][]GenesisContract{
		"empty init code": {{Address: storeAddr}},
		"duplicate address": {
			storeContract(1),
			storeContract(2),
		},
		"reverting call": {
			{Address: revertAddr, InitCode: revertInitCode, Calls: []GenesisCall{{From: setterAddr}}},
		},
		"reverting constructor": {
			{Address: revertAddr, InitCode: revertInitCode[12:]},
		},
		"address holds code": {
			{Address: params.HistoryStorageAddress, InitCode: storeInitCode(1)},
		},
	}
	for name, contracts := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := buildGenesis(Config{Contracts: contracts}.withDefaults())
			if !errors.Is(err, ErrGenesisSetup) {
				t.Fatalf("err = %v, want ErrGenesisSetup", err)
			}
		})
	}
}

func TestBuildGenesisRejectsNegativeBalance(t *testing.T) {
	cfg := Config{Alloc: map[common.Address]*big.Int{setterAddr: big.NewInt(-1)}}.withDefaults()
	if _, err := buildGenesis(cfg); err == nil {
		t.Fatal("negative balance accepted")
	}
}
