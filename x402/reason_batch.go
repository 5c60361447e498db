package x402

// Reasons of the batch-settlement scheme on EVM, spelled as the reference SDKs (npm @x402/evm,
// the Go SDK) and the binding spec emit them. The resource server uses the first group for its
// own 402 answers; the facilitator emits the rest.
const (
	ReasonBatchCumulativeAmountMismatch      Reason = "invalid_batch_settlement_evm_cumulative_amount_mismatch"
	ReasonBatchChannelBusy                   Reason = "invalid_batch_settlement_evm_channel_busy"
	ReasonBatchVerificationStateUnavailable  Reason = "invalid_batch_settlement_evm_verification_state_unavailable"
	ReasonBatchChargeExceedsSignedCumulative Reason = "invalid_batch_settlement_evm_charge_exceeds_signed_cumulative"
	ReasonBatchMissingChannel                Reason = "invalid_batch_settlement_evm_missing_channel"
	ReasonBatchRefundNoBalance               Reason = "invalid_batch_settlement_evm_refund_no_balance"
	ReasonBatchRefundAmountInvalid           Reason = "invalid_batch_settlement_evm_refund_amount_invalid"
	ReasonBatchDepositBelowMinDeposit        Reason = "invalid_batch_settlement_evm_deposit_below_min_deposit"
)

// Batch-settlement payload and channel checks.
const (
	ReasonBatchScheme                     Reason = "invalid_batch_settlement_evm_scheme"
	ReasonBatchNetworkMismatch            Reason = "invalid_batch_settlement_evm_network_mismatch"
	ReasonBatchPayloadType                Reason = "invalid_batch_settlement_evm_payload_type"
	ReasonBatchVoucherPayload             Reason = "invalid_batch_settlement_evm_voucher_payload"
	ReasonBatchDepositPayload             Reason = "invalid_batch_settlement_evm_deposit_payload"
	ReasonBatchRefundPayload              Reason = "invalid_batch_settlement_evm_refund_payload"
	ReasonBatchClaimPayload               Reason = "invalid_batch_settlement_evm_claim_payload"
	ReasonBatchSettlePayload              Reason = "invalid_batch_settlement_evm_settle_payload"
	ReasonBatchUnknownSettleAction        Reason = "invalid_batch_settlement_evm_unknown_settle_action"
	ReasonBatchMissingEIP712Domain        Reason = "invalid_batch_settlement_evm_missing_eip712_domain"
	ReasonBatchChannelIDInvalid           Reason = "invalid_batch_settlement_evm_channel_id_invalid"
	ReasonBatchChannelIDMismatch          Reason = "invalid_batch_settlement_evm_channel_id_mismatch"
	ReasonBatchChannelNotFound            Reason = "invalid_batch_settlement_evm_channel_not_found"
	ReasonBatchReceiverMismatch           Reason = "invalid_batch_settlement_evm_receiver_mismatch"
	ReasonBatchReceiverAuthorizerMismatch Reason = "invalid_batch_settlement_evm_receiver_authorizer_mismatch"
	ReasonBatchTokenMismatch              Reason = "invalid_batch_settlement_evm_token_mismatch"
	ReasonBatchWithdrawDelayMismatch      Reason = "invalid_batch_settlement_evm_withdraw_delay_mismatch"
	ReasonBatchWithdrawDelayOutOfRange    Reason = "invalid_batch_settlement_evm_withdraw_delay_out_of_range"
	ReasonBatchVoucherSignature           Reason = "invalid_batch_settlement_evm_voucher_signature"
	ReasonBatchCumulativeExceedsBalance   Reason = "invalid_batch_settlement_evm_cumulative_exceeds_balance"
	ReasonBatchCumulativeBelowClaimed     Reason = "invalid_batch_settlement_evm_cumulative_below_claimed"
	ReasonBatchInsufficientBalance        Reason = "invalid_batch_settlement_evm_insufficient_balance"
	ReasonBatchRefundAmountExceedsBalance Reason = "invalid_batch_settlement_evm_refund_amount_exceeds_balance"
)

// Batch-settlement deposit authorizations (ERC-3009, Permit2 and the gas-sponsoring extensions).
const (
	ReasonBatchValidBefore                  Reason = "invalid_batch_settlement_evm_payload_authorization_valid_before"
	ReasonBatchValidAfter                   Reason = "invalid_batch_settlement_evm_payload_authorization_valid_after"
	ReasonBatchReceiveAuthorizationSig      Reason = "invalid_batch_settlement_evm_receive_authorization_signature"
	ReasonBatchERC3009AuthorizationRequired Reason = "invalid_batch_settlement_evm_erc3009_authorization_required"
	ReasonBatchPermit2AuthorizationRequired Reason = "invalid_batch_settlement_evm_permit2_authorization_required"
	ReasonBatchPermit2InvalidSpender        Reason = "invalid_batch_settlement_evm_permit2_invalid_spender"
	ReasonBatchPermit2AmountMismatch        Reason = "invalid_batch_settlement_evm_permit2_amount_mismatch"
	ReasonBatchPermit2DeadlineExpired       Reason = "invalid_batch_settlement_evm_permit2_deadline_expired"
	ReasonBatchPermit2InvalidSignature      Reason = "invalid_batch_settlement_evm_permit2_invalid_signature"
	ReasonBatchPermit2AllowanceRequired     Reason = "invalid_batch_settlement_evm_permit2_allowance_required"
	ReasonBatchEIP2612AmountMismatch        Reason = "invalid_batch_settlement_evm_eip2612_amount_mismatch"
	ReasonBatchEIP2612OwnerMismatch         Reason = "invalid_batch_settlement_evm_eip2612_owner_mismatch"
	ReasonBatchEIP2612AssetMismatch         Reason = "invalid_batch_settlement_evm_eip2612_asset_mismatch"
	ReasonBatchEIP2612SpenderMismatch       Reason = "invalid_batch_settlement_evm_eip2612_spender_mismatch"
	ReasonBatchEIP2612DeadlineExpired       Reason = "invalid_batch_settlement_evm_eip2612_deadline_expired"
	ReasonBatchEIP2612InvalidFormat         Reason = "invalid_batch_settlement_evm_eip2612_invalid_format"
	ReasonBatchEIP2612InvalidSignature      Reason = "invalid_batch_settlement_evm_eip2612_invalid_signature"
	ReasonBatchERC20ApprovalUnavailable     Reason = "invalid_batch_settlement_evm_erc20_approval_unavailable"
	ReasonBatchERC20ApprovalInvalidFormat   Reason = "invalid_batch_settlement_evm_erc20_approval_invalid_format"
	ReasonBatchERC20ApprovalFromMismatch    Reason = "invalid_batch_settlement_evm_erc20_approval_from_mismatch"
	ReasonBatchERC20ApprovalAssetMismatch   Reason = "invalid_batch_settlement_evm_erc20_approval_asset_mismatch"
	ReasonBatchERC20ApprovalWrongSpender    Reason = "invalid_batch_settlement_evm_erc20_approval_wrong_spender"
	ReasonBatchERC20ApprovalBroadcastFailed Reason = "invalid_batch_settlement_evm_erc20_approval_broadcast_failed"
	ReasonBatchEIP6492FactoryNotAllowed     Reason = "invalid_batch_settlement_evm_eip6492_factory_not_allowed"
	ReasonBatchSmartWalletDeploymentFailed  Reason = "invalid_batch_settlement_evm_smart_wallet_deployment_failed"
)

// Batch-settlement facilitator execution (deposit, claim, settle, refund transactions).
const (
	ReasonBatchAuthorizerNotConfigured   Reason = "invalid_batch_settlement_evm_authorizer_not_configured"
	ReasonBatchAuthorizerAddressMismatch Reason = "invalid_batch_settlement_evm_authorizer_address_mismatch"
	ReasonBatchRPCReadFailed             Reason = "invalid_batch_settlement_evm_rpc_read_failed"
	ReasonBatchChannelStateReadFailed    Reason = "invalid_batch_settlement_evm_channel_state_read_failed"
	ReasonBatchDepositSimulationFailed   Reason = "invalid_batch_settlement_evm_deposit_simulation_failed"
	ReasonBatchDepositTransactionFailed  Reason = "invalid_batch_settlement_evm_deposit_transaction_failed"
	ReasonBatchClaimSimulationFailed     Reason = "invalid_batch_settlement_evm_claim_simulation_failed"
	ReasonBatchClaimTransactionFailed    Reason = "invalid_batch_settlement_evm_claim_transaction_failed"
	ReasonBatchSettleSimulationFailed    Reason = "invalid_batch_settlement_evm_settle_simulation_failed"
	ReasonBatchSettleTransactionFailed   Reason = "invalid_batch_settlement_evm_settle_transaction_failed"
	ReasonBatchNothingToSettle           Reason = "invalid_batch_settlement_evm_nothing_to_settle"
	ReasonBatchRefundSimulationFailed    Reason = "invalid_batch_settlement_evm_refund_simulation_failed"
	ReasonBatchRefundTransactionFailed   Reason = "invalid_batch_settlement_evm_refund_transaction_failed"
	ReasonBatchTransactionReverted       Reason = "invalid_batch_settlement_evm_transaction_reverted"
	ReasonBatchWaitForReceiptFailed      Reason = "invalid_batch_settlement_evm_wait_for_receipt_failed"
)

// ReasonInvalidPaymentRequirements is the spec's generic code for requirements a scheme cannot
// use (for batch-settlement: no usable extra.receiverAuthorizer or withdrawDelay).
const ReasonInvalidPaymentRequirements Reason = "invalid_payment_requirements"
