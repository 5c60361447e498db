package devchain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/holiman/uint256"
)

// GenesisContract is a contract placed into the genesis state at a fixed
// Address, so that it sits at the same (canonical) address on every dev chain.
//
// Its constructor (InitCode: creation bytecode followed by the ABI-encoded
// constructor arguments) runs in a throwaway EVM with the dev chain's rules
// and chain id, as if deployed at Address by Deployer. Then each Call runs
// against it in order. The resulting code, storage, balance and nonce of every
// account these executions touched are written into the genesis. Contracts
// are set up in slice order, so later ones may call earlier ones.
type GenesisContract struct {
	Address  common.Address
	InitCode []byte
	// Deployer is msg.sender and tx.origin of the constructor; zero if unset.
	Deployer common.Address
	Calls    []GenesisCall
}

// GenesisCall is a call made against the genesis state after the contract's
// constructor ran, e.g. to mint tokens or grant a role. It must not revert.
type GenesisCall struct {
	From common.Address
	Data []byte
}

// ErrGenesisSetup means a GenesisContract could not be placed into genesis.
var ErrGenesisSetup = errors.New("devchain: genesis contract setup failed")

// buildGenesis assembles the dev genesis the way geth --dev does, with the
// configured chain id, balances and contracts. It depends only on cfg, so the
// same config always yields the same genesis hash (needed to reopen DataDir).
func buildGenesis(cfg Config) (*core.Genesis, error) {
	genesis := core.DeveloperGenesisBlock(cfg.GasLimit, nil)
	chainConfig := *genesis.Config
	chainConfig.ChainID = new(big.Int).SetUint64(cfg.ChainID)
	// go-ethereum's dev config also switches on a fork no public chain runs yet, whose storage
	// pricing makes transactions cost far more gas than on real networks (a stock facilitator's
	// fixed gas limits then fail). The dev chain follows the rules public chains run.
	chainConfig.BogotaTime = nil
	genesis.Config = &chainConfig
	// The chain id lives only in the chain config, which geth silently
	// rewrites when reopening a database. Putting it into the genesis header
	// makes a chain id change a genesis mismatch instead.
	genesis.ExtraData = binary.BigEndian.AppendUint64([]byte("devchain"), cfg.ChainID)

	for addr, balance := range cfg.Alloc {
		if balance != nil && balance.Sign() < 0 {
			return nil, fmt.Errorf("devchain: negative genesis balance for %s", addr)
		}
		account := genesis.Alloc[addr]
		account.Balance = new(big.Int)
		if balance != nil {
			account.Balance.Set(balance)
		}
		genesis.Alloc[addr] = account
	}
	if len(cfg.Contracts) > 0 {
		if err := deployGenesisContracts(genesis, cfg.Contracts); err != nil {
			return nil, err
		}
	}
	return genesis, nil
}

// genesisEVM is the throwaway execution environment for genesis contracts.
type genesisEVM struct {
	state   *state.StateDB
	evm     *vm.EVM
	rules   params.Rules
	gas     uint64
	touched map[common.Address]map[common.Hash]struct{} // account -> written slots
}

func deployGenesisContracts(genesis *core.Genesis, contracts []GenesisContract) error {
	env, err := newGenesisEVM(genesis)
	if err != nil {
		return err
	}
	seen := make(map[common.Address]bool, len(contracts))
	for i, c := range contracts {
		if seen[c.Address] {
			return fmt.Errorf("%w: contract %d: address %s used twice", ErrGenesisSetup, i, c.Address)
		}
		seen[c.Address] = true
		if err := env.deploy(c); err != nil {
			return fmt.Errorf("%w: contract %d at %s: %w", ErrGenesisSetup, i, c.Address, err)
		}
		for j, call := range c.Calls {
			if _, err := env.call(call.From, c.Address, call.Data); err != nil {
				return fmt.Errorf("%w: contract %d at %s, call %d: %w", ErrGenesisSetup, i, c.Address, j, err)
			}
		}
	}
	env.exportTouched(genesis.Alloc)
	return nil
}

func newGenesisEVM(genesis *core.Genesis) (*genesisEVM, error) {
	db := rawdb.NewMemoryDatabase()
	sdb := state.NewMPTDatabase(triedb.NewDatabase(db, nil), state.NewCodeDB(db))
	statedb, err := state.New(types.EmptyRootHash, sdb)
	if err != nil {
		return nil, fmt.Errorf("%w: memory state: %w", ErrGenesisSetup, err)
	}
	for addr, account := range genesis.Alloc {
		statedb.CreateAccount(addr)
		if account.Balance != nil {
			statedb.SetBalance(addr, uint256.MustFromBig(account.Balance), tracing.BalanceIncreaseGenesisBalance)
		}
		statedb.SetNonce(addr, account.Nonce, tracing.NonceChangeGenesis)
		statedb.SetCode(addr, account.Code, tracing.CodeChangeGenesis)
		for slot, value := range account.Storage {
			statedb.SetState(addr, slot, value)
		}
	}
	env := &genesisEVM{
		state:   statedb,
		gas:     genesis.GasLimit,
		touched: make(map[common.Address]map[common.Hash]struct{}),
	}
	// Only the set of touched accounts and slots is recorded here; final
	// values are read back from the state afterwards, so writes undone by a
	// revert cannot leak into the genesis.
	hooks := &tracing.Hooks{
		OnStorageChange: func(addr common.Address, slot, _, _ common.Hash) { env.touch(addr, &slot) },
		OnBalanceChange: func(addr common.Address, _, _ *big.Int, _ tracing.BalanceChangeReason) { env.touch(addr, nil) },
		OnNonceChange:   func(addr common.Address, _, _ uint64) { env.touch(addr, nil) },
		OnCodeChange: func(addr common.Address, _ common.Hash, _ []byte, _ common.Hash, _ []byte) {
			env.touch(addr, nil)
		},
	}
	random := common.Hash{}
	blockCtx := vm.BlockContext{
		CanTransfer:      core.CanTransfer,
		Transfer:         core.Transfer,
		GetHash:          func(uint64) common.Hash { return common.Hash{} },
		GasLimit:         genesis.GasLimit,
		BlockNumber:      new(big.Int),
		Time:             genesis.Timestamp,
		Difficulty:       new(big.Int),
		BaseFee:          new(big.Int).Set(genesis.BaseFee),
		BlobBaseFee:      big.NewInt(params.BlobTxMinBlobGasprice),
		Random:           &random,
		CostPerStateByte: params.CostPerStateByte,
	}
	env.evm = vm.NewEVM(blockCtx, state.NewHookedState(statedb, hooks), genesis.Config, vm.Config{})
	env.rules = genesis.Config.Rules(blockCtx.BlockNumber, true, blockCtx.Time)
	return env, nil
}

func (e *genesisEVM) touch(addr common.Address, slot *common.Hash) {
	slots, ok := e.touched[addr]
	if !ok {
		slots = make(map[common.Hash]struct{})
		e.touched[addr] = slots
	}
	if slot != nil {
		slots[*slot] = struct{}{}
	}
}

// deploy runs the constructor at c.Address. The init code is installed at the
// target address and called; what it returns becomes the runtime code. This
// keeps address(this) equal to the final address during construction, which
// matters for contracts that cache it (EIP-712 domain separators).
func (e *genesisEVM) deploy(c GenesisContract) error {
	if len(c.InitCode) == 0 {
		return errors.New("empty init code")
	}
	if e.state.GetCodeSize(c.Address) != 0 {
		return errors.New("address already holds code")
	}
	if !e.state.Exist(c.Address) {
		e.state.CreateAccount(c.Address)
	}
	e.state.CreateContract(c.Address)
	e.state.SetNonce(c.Address, 1, tracing.NonceChangeNewContract) // EIP-161
	e.state.SetCode(c.Address, c.InitCode, tracing.CodeChangeGenesis)
	e.touch(c.Address, nil)

	runtime, err := e.call(c.Deployer, c.Address, nil)
	if err != nil {
		return fmt.Errorf("constructor: %w", err)
	}
	if len(runtime) == 0 {
		return errors.New("constructor returned empty runtime code")
	}
	e.state.SetCode(c.Address, runtime, tracing.CodeChangeGenesis)
	return nil
}

// call executes one message like a transaction without gas payment or nonce
// increment, and returns the output.
func (e *genesisEVM) call(from, to common.Address, data []byte) ([]byte, error) {
	e.state.Prepare(e.rules, from, common.Address{}, &to, vm.ActivePrecompiles(e.rules), nil)
	e.evm.SetTxContext(vm.TxContext{Origin: from, GasPrice: new(uint256.Int)})
	ret, _, err := e.evm.Call(from, to, data, vm.NewGasBudget(e.gas, 0), new(uint256.Int))
	e.state.Finalise(e.rules)
	if err != nil {
		if reason, unpackErr := abi.UnpackRevert(ret); unpackErr == nil {
			return nil, fmt.Errorf("%w: %s", err, reason)
		}
		return nil, fmt.Errorf("%w (return data 0x%x)", err, ret)
	}
	return ret, nil
}

// exportTouched copies the final state of every touched account into alloc.
func (e *genesisEVM) exportTouched(alloc types.GenesisAlloc) {
	for addr, slots := range e.touched {
		account := types.Account{
			Balance: e.state.GetBalance(addr).ToBig(),
			Nonce:   e.state.GetNonce(addr),
			Code:    e.state.GetCode(addr),
		}
		for slot := range slots {
			if value := e.state.GetState(addr, slot); value != (common.Hash{}) {
				if account.Storage == nil {
					account.Storage = make(map[common.Hash]common.Hash)
				}
				account.Storage[slot] = value
			}
		}
		empty := account.Balance.Sign() == 0 && account.Nonce == 0 && len(account.Code) == 0 && len(account.Storage) == 0
		if empty {
			delete(alloc, addr)
			continue
		}
		alloc[addr] = account
	}
}
