package batchmethod

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/contracts/escrow"
	"github.com/payper/payper/scheme/batch"
)

// The escrow calls the gateway sends: claims and cooperative refunds. They are packed here and
// sent through the settlement engine (settle.SendAndWait) like any settlement transaction.

var settlementABI = escrow.NewBatchSettlement()

func escrowConfig(c batch.ChannelConfig) escrow.BatchSettlementChannelConfig {
	return escrow.BatchSettlementChannelConfig{
		Payer: c.Payer, PayerAuthorizer: c.PayerAuthorizer, Receiver: c.Receiver, ReceiverAuthorizer: c.ReceiverAuthorizer,
		Token: c.Token, WithdrawDelay: new(big.Int).SetUint64(c.WithdrawDelay), Salt: c.Salt,
	}
}

func claimRows(claims []batch.VoucherClaim) []escrow.BatchSettlementVoucherClaim {
	rows := make([]escrow.BatchSettlementVoucherClaim, len(claims))
	for i, cl := range claims {
		rows[i] = escrow.BatchSettlementVoucherClaim{
			Voucher:   escrow.BatchSettlementVoucher{Channel: escrowConfig(cl.Channel), MaxClaimableAmount: cl.MaxClaimableAmount},
			Signature: cl.Signature, TotalClaimed: cl.TotalClaimed,
		}
	}
	return rows
}

// claimAndSettleData is one escrow multicall: claimWithSignature for every row (authorized by
// the receiver authorizer's ClaimBatch signature), then settle(receiver, token), which pays the
// receiver everything claimed.
func claimAndSettleData(claims []batch.VoucherClaim, authorizerSig []byte, receiver, token common.Address) ([]byte, error) {
	claim, err := settlementABI.TryPackClaimWithSignature(claimRows(claims), authorizerSig)
	if err != nil {
		return nil, fmt.Errorf("claim call: %w", err)
	}
	data, err := settlementABI.TryPackMulticall([][]byte{claim, settlementABI.PackSettle(receiver, token)})
	if err != nil {
		return nil, fmt.Errorf("multicall: %w", err)
	}
	return data, nil
}

// claimAndRefundData is one escrow multicall that claims the channel's outstanding voucher (a
// row the escrow skips when already claimed), refunds amount of its unclaimed balance to the payer
// and pays the receiver what is claimed. Claim and refund carry receiver-authorizer signatures.
func claimAndRefundData(claim batch.VoucherClaim, claimSig []byte, amount, nonce *big.Int, refundSig []byte) ([]byte, error) {
	claimCall, err := settlementABI.TryPackClaimWithSignature(claimRows([]batch.VoucherClaim{claim}), claimSig)
	if err != nil {
		return nil, fmt.Errorf("claim call: %w", err)
	}
	refundCall, err := settlementABI.TryPackRefundWithSignature(escrowConfig(claim.Channel), amount, nonce, refundSig)
	if err != nil {
		return nil, fmt.Errorf("refund call: %w", err)
	}
	settleCall := settlementABI.PackSettle(claim.Channel.Receiver, claim.Channel.Token)
	data, err := settlementABI.TryPackMulticall([][]byte{claimCall, refundCall, settleCall})
	if err != nil {
		return nil, fmt.Errorf("multicall: %w", err)
	}
	return data, nil
}
