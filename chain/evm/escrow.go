package evm

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/scheme/batch"
	"github.com/payper/payper/store"
)

var settlementABI = escrow.NewBatchSettlement()

// erc3009CollectorData is abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt, bytes signature),
// what the ERC-3009 deposit collector decodes.
var erc3009CollectorData = func() abi.Arguments {
	u256, _ := abi.NewType("uint256", "", nil)
	bytesT, _ := abi.NewType("bytes", "", nil)
	return abi.Arguments{{Type: u256}, {Type: u256}, {Type: u256}, {Type: bytesT}}
}()

func escrowConfig(c batch.ChannelConfig) escrow.BatchSettlementChannelConfig {
	return escrow.BatchSettlementChannelConfig{
		Payer: c.Payer, PayerAuthorizer: c.PayerAuthorizer, Receiver: c.Receiver, ReceiverAuthorizer: c.ReceiverAuthorizer,
		Token: c.Token, WithdrawDelay: new(big.Int).SetUint64(c.WithdrawDelay), Salt: c.Salt,
	}
}

// ChannelState reads an escrow channel at the latest block: balance, claimed total, pending
// withdrawal and refund nonce, read at one block number so they agree.
func (c *Client) ChannelState(ctx context.Context, id common.Hash) (store.ChannelChainState, error) {
	// One eth_call reads the three views through the escrow's own multicall, at one block.
	reads, err := settlementABI.TryPackMulticall([][]byte{
		settlementABI.PackChannels(id), settlementABI.PackPendingWithdrawals(id), settlementABI.PackRefundNonce(id),
	})
	if err != nil {
		return store.ChannelChainState{}, err
	}
	var head uint64
	var out []byte
	// The head and the call at it on one endpoint: another may not have that block yet.
	err = c.read(ctx, func(ctx context.Context, e *endpoint) error {
		h, err := e.eth.BlockNumber(ctx)
		if err != nil {
			return fmt.Errorf("block number: %w", err)
		}
		if out, err = e.eth.CallContract(ctx, callMsg(escrow.BatchSettlementAddress, reads), new(big.Int).SetUint64(h)); err != nil {
			return err
		}
		head = h
		return nil
	})
	if err != nil {
		return store.ChannelChainState{}, fmt.Errorf("evm: read channel: %w", err)
	}
	results, err := settlementABI.UnpackMulticall(out)
	if err != nil || len(results) != 3 {
		return store.ChannelChainState{}, fmt.Errorf("evm: read channel: %d results, %v", len(results), err)
	}
	ch, err := settlementABI.UnpackChannels(results[0])
	if err != nil {
		return store.ChannelChainState{}, err
	}
	pw, err := settlementABI.UnpackPendingWithdrawals(results[1])
	if err != nil {
		return store.ChannelChainState{}, err
	}
	nonce, err := settlementABI.UnpackRefundNonce(results[2])
	if err != nil {
		return store.ChannelChainState{}, err
	}
	return store.ChannelChainState{
		Balance: ch.Balance, TotalClaimed: ch.TotalClaimed, PendingWithdrawal: pw.Amount,
		WithdrawRequestedAt: pw.InitiatedAt.Int64(), RefundNonce: nonce, Block: head,
	}, nil
}

// Deposit submits a payer's signed ERC-3009 deposit into the escrow from the settler account and
// waits for it to be mined.
func (c *Client) Deposit(ctx context.Context, cfg batch.ChannelConfig, d batch.Deposit) (common.Hash, error) {
	if d.ERC3009 == nil {
		return common.Hash{}, fmt.Errorf("evm: only ERC-3009 deposits are supported")
	}
	a := d.ERC3009
	collectorData, err := erc3009CollectorData.Pack(a.ValidAfter, a.ValidBefore, new(big.Int).SetBytes(a.Salt[:]), a.Signature)
	if err != nil {
		return common.Hash{}, fmt.Errorf("evm: collector data: %w", err)
	}
	data, err := settlementABI.TryPackDeposit(escrowConfig(cfg), d.Amount, escrow.ERC3009DepositCollectorAddress, collectorData)
	if err != nil {
		return common.Hash{}, fmt.Errorf("evm: deposit call: %w", err)
	}
	return c.sendAndWait(ctx, escrow.BatchSettlementAddress, data)
}

// InitiateWithdraw starts the payer's timed withdrawal of amount from a channel (the client key
// must be the payer or its authorizer) and waits for it to be mined.
func (c *Client) InitiateWithdraw(ctx context.Context, cfg batch.ChannelConfig, amount *big.Int) (common.Hash, error) {
	data, err := settlementABI.TryPackInitiateWithdraw(escrowConfig(cfg), amount)
	if err != nil {
		return common.Hash{}, fmt.Errorf("evm: initiateWithdraw call: %w", err)
	}
	return c.sendAndWait(ctx, escrow.BatchSettlementAddress, data)
}

// FinalizeWithdraw pays out a withdrawal whose delay has passed and waits for it to be mined.
func (c *Client) FinalizeWithdraw(ctx context.Context, cfg batch.ChannelConfig) (common.Hash, error) {
	data, err := settlementABI.TryPackFinalizeWithdraw(escrowConfig(cfg))
	if err != nil {
		return common.Hash{}, fmt.Errorf("evm: finalizeWithdraw call: %w", err)
	}
	return c.sendAndWait(ctx, escrow.BatchSettlementAddress, data)
}

// ChannelEvent is an escrow event about one channel.
type ChannelEvent struct {
	ChannelID common.Hash
	Name      string // Deposited, Claimed, Refunded, WithdrawInitiated, WithdrawFinalized, ChannelCreated, ChannelClosed
	Block     uint64
}

// channelEvents are the escrow events whose first indexed topic is the channel id.
var channelEvents = func() map[common.Hash]string {
	out := map[common.Hash]string{}
	for _, name := range []string{"Deposited", "Claimed", "Refunded", "WithdrawInitiated", "WithdrawFinalized", "ChannelCreated", "ChannelClosed"} {
		out[settlementABI.GetABI().Events[name].ID] = name
	}
	return out
}()

// ChannelEvents returns the escrow's channel events in blocks from..to, oldest first.
func (c *Client) ChannelEvents(ctx context.Context, from, to uint64) ([]ChannelEvent, error) {
	topics := make([]common.Hash, 0, len(channelEvents))
	for id := range channelEvents {
		topics = append(topics, id)
	}
	logs, err := readValue(ctx, c, func(ctx context.Context, eth *ethclient.Client) ([]types.Log, error) {
		return eth.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(to),
			Addresses: []common.Address{escrow.BatchSettlementAddress}, Topics: [][]common.Hash{topics},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("evm: escrow logs: %w", err)
	}
	out := make([]ChannelEvent, 0, len(logs))
	for _, l := range logs {
		if len(l.Topics) < 2 || l.Removed {
			continue
		}
		out = append(out, ChannelEvent{ChannelID: l.Topics[1], Name: channelEvents[l.Topics[0]], Block: l.BlockNumber})
	}
	return out, nil
}
