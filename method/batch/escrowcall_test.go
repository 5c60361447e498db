package batchmethod

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/scheme/batch"
)

// escrowCall is what an escrow multicall the gateway sends asks for, read back the way the
// contract reads it: the claims, and a refund's amount and nonce (nil without one).
type escrowCall struct {
	claims              []batch.VoucherClaim
	refundAmount, nonce *big.Int
}

func decodeEscrowCall(data []byte) (escrowCall, error) {
	var out escrowCall
	a := settlementABI.GetABI()
	calls, err := unpackCall(a, data, "multicall")
	if err != nil {
		return out, err
	}
	for _, call := range calls[0].([][]byte) {
		m, err := a.MethodById(call)
		if err != nil {
			return out, err
		}
		args, err := unpackCall(a, call, m.Name)
		if err != nil {
			return out, err
		}
		switch m.Name {
		case "claimWithSignature":
			rows := *abi.ConvertType(args[0], new([]escrow.BatchSettlementVoucherClaim)).(*[]escrow.BatchSettlementVoucherClaim)
			for _, r := range rows {
				ch := r.Voucher.Channel
				out.claims = append(out.claims, batch.VoucherClaim{
					Channel: batch.ChannelConfig{Payer: ch.Payer, PayerAuthorizer: ch.PayerAuthorizer, Receiver: ch.Receiver,
						ReceiverAuthorizer: ch.ReceiverAuthorizer, Token: ch.Token, WithdrawDelay: ch.WithdrawDelay.Uint64(), Salt: ch.Salt},
					MaxClaimableAmount: r.Voucher.MaxClaimableAmount, Signature: r.Signature, TotalClaimed: r.TotalClaimed,
				})
			}
		case "refundWithSignature":
			out.refundAmount, out.nonce = args[1].(*big.Int), args[2].(*big.Int)
		}
	}
	return out, nil
}

func unpackCall(a abi.ABI, data []byte, name string) ([]any, error) {
	m, err := a.MethodById(data)
	if err != nil || m.Name != name {
		return nil, fmt.Errorf("not a %s call: %v", name, err)
	}
	return m.Inputs.Unpack(data[4:])
}

// minedAtOnce is a chain on which every transaction sent is mined with success at once.
type minedAtOnce struct{}

func (minedAtOnce) WaitMined(_ context.Context, h common.Hash) (*types.Receipt, error) {
	return &types.Receipt{TxHash: h, Status: types.ReceiptStatusSuccessful}, nil
}
