package x402

import (
	"errors"
	"fmt"
)

// Reason is a protocol failure reason as it travels on the wire (PaymentRequired.error,
// VerifyResponse.invalidReason, SettlementResponse.errorReason). A Reason is an error, so
// errors.Is(err, x402.ReasonNonceAlreadyUsed) works through any wrapping.
type Reason string

func (r Reason) Error() string { return string(r) }

// Generic reasons.
const (
	ReasonPaymentRequired        Reason = "payment_required"
	ReasonNoMatchingRequirements Reason = "no_matching_payment_requirements"
	ReasonInvalidPayload         Reason = "invalid_payload"
	ReasonInvalidVersion         Reason = "invalid_x402_version"
	ReasonUnsupportedScheme      Reason = "unsupported_scheme"
	ReasonInvalidNetwork         Reason = "invalid_network"
	ReasonUnexpectedVerifyError  Reason = "unexpected_verify_error"
	ReasonUnexpectedSettleError  Reason = "unexpected_settle_error"
	ReasonSettlementPending      Reason = "settlement_pending"
)

// Reasons of the exact scheme on EVM, spelled as the reference SDKs emit them.
const (
	ReasonExactScheme                 Reason = "invalid_exact_evm_scheme"
	ReasonExactNetworkMismatch        Reason = "invalid_exact_evm_network_mismatch"
	ReasonExactPayload                Reason = "invalid_exact_evm_payload"
	ReasonExactMissingSignature       Reason = "invalid_exact_evm_payload_missing_signature"
	ReasonExactMissingDomain          Reason = "invalid_exact_evm_missing_eip712_domain"
	ReasonExactRecipientMismatch      Reason = "invalid_exact_evm_recipient_mismatch"
	ReasonExactValueMismatch          Reason = "invalid_exact_evm_payload_authorization_value_mismatch"
	ReasonExactValidBefore            Reason = "invalid_exact_evm_payload_authorization_valid_before"
	ReasonExactValidAfter             Reason = "invalid_exact_evm_payload_authorization_valid_after"
	ReasonExactSignatureFormat        Reason = "invalid_exact_evm_signature_format"
	ReasonExactSignature              Reason = "invalid_exact_evm_signature"
	ReasonExactNonceAlreadyUsed       Reason = "invalid_exact_evm_nonce_already_used"
	ReasonExactInsufficientBalance    Reason = "invalid_exact_evm_insufficient_balance"
	ReasonExactFailedToCheckNonce     Reason = "invalid_exact_evm_failed_to_check_nonce"
	ReasonExactFailedToGetBalance     Reason = "invalid_exact_evm_failed_to_get_balance"
	ReasonExactAssetNotDeployed       Reason = "asset_not_deployed_contract"
	ReasonExactFailedToExecute        Reason = "invalid_exact_evm_failed_to_execute_transfer"
	ReasonExactFailedToGetReceipt     Reason = "invalid_exact_evm_failed_to_get_receipt"
	ReasonExactTransactionFailed      Reason = "invalid_exact_evm_transaction_failed"
	ReasonExactTransactionSimFailed   Reason = "invalid_exact_evm_transaction_simulation_failed"
	ReasonExactVerificationFailed     Reason = "invalid_exact_evm_verification_failed"
	ReasonExactFailedToParseSignature Reason = "invalid_exact_evm_failed_to_parse_signature"
)

// Error carries a Reason together with a message fit for the caller and, separately, the cause
// for the logs. The caller never sees Cause: it may hold RPC URLs or database errors.
type Error struct {
	Reason  Reason
	Message string // safe to show the payer
	Cause   error  // for logs only
}

// Fail builds an *Error. message is shown to the payer; cause is only logged.
func Fail(reason Reason, message string, cause error) *Error {
	return &Error{Reason: reason, Message: message, Cause: cause}
}

// Failf is Fail with a formatted message and no cause.
func Failf(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := string(e.Reason)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap exposes both the reason and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Cause}
}

// ReasonOf returns the protocol reason carried by err, if any.
func ReasonOf(err error) (Reason, bool) {
	var xe *Error
	if errors.As(err, &xe) {
		return xe.Reason, true
	}
	var r Reason
	if errors.As(err, &r) {
		return r, true
	}
	return "", false
}

// MessageOf returns the payer-facing message of err: the *Error's message, or the bare reason.
func MessageOf(err error) string {
	var xe *Error
	if errors.As(err, &xe) {
		if xe.Message != "" {
			return xe.Message
		}
		return string(xe.Reason)
	}
	if r, ok := ReasonOf(err); ok {
		return string(r)
	}
	return "payment could not be processed"
}
