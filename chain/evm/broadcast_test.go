package evm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/txpool/legacypool"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/payper/payper/settle/account"
)

// answerError is a JSON-RPC error object as the client decodes it.
type answerError struct {
	code int
	msg  string
}

func (e answerError) Error() string  { return e.msg }
func (e answerError) ErrorCode() int { return e.code }

// nodeAnswer is the error a go-ethereum node sends for err, with the details it appends.
func nodeAnswer(err error) error {
	return answerError{code: -32000, msg: fmt.Errorf("%w: address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, tx: 4 state: 5", err).Error()}
}

func TestClassifyBroadcast(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want account.Broadcast
	}{
		{"accepted", nil, account.BroadcastSent},
		{"already in the pool", answerError{-32000, txpool.ErrAlreadyKnown.Error()}, account.BroadcastSent},
		{"old node: known transaction", answerError{-32000, "known transaction: 0x1234"}, account.BroadcastSent},

		{"nonce too low", nodeAnswer(core.ErrNonceTooLow), account.BroadcastRefused},
		{"nonce too low, other case", answerError{-32000, "Nonce too low"}, account.BroadcastRefused},
		{"nonce too high", nodeAnswer(core.ErrNonceTooHigh), account.BroadcastRefused},
		{"replacement underpriced", nodeAnswer(txpool.ErrReplaceUnderpriced), account.BroadcastRefused},
		{"underpriced", nodeAnswer(txpool.ErrUnderpriced), account.BroadcastRefused},
		{"below pool minimum", nodeAnswer(txpool.ErrTxGasPriceTooLow), account.BroadcastRefused},
		{"insufficient funds", nodeAnswer(core.ErrInsufficientFunds), account.BroadcastRefused},
		{"insufficient funds for transfer", nodeAnswer(core.ErrInsufficientFundsForTransfer), account.BroadcastRefused},
		{"intrinsic gas", nodeAnswer(core.ErrIntrinsicGas), account.BroadcastRefused},
		{"floor data gas", nodeAnswer(core.ErrFloorDataGas), account.BroadcastRefused},
		{"block gas limit", nodeAnswer(txpool.ErrGasLimit), account.BroadcastRefused},
		{"gas limit reached", nodeAnswer(core.ErrGasLimitReached), account.BroadcastRefused},
		{"tx gas limit too high", nodeAnswer(core.ErrGasLimitTooHigh), account.BroadcastRefused},
		{"fee cap below base fee", nodeAnswer(core.ErrFeeCapTooLow), account.BroadcastRefused},
		{"tip above fee cap", nodeAnswer(core.ErrTipAboveFeeCap), account.BroadcastRefused},
		{"tx type", nodeAnswer(core.ErrTxTypeNotSupported), account.BroadcastRefused},
		{"sender not an eoa", nodeAnswer(core.ErrSenderNoEOA), account.BroadcastRefused},
		{"invalid sender", nodeAnswer(txpool.ErrInvalidSender), account.BroadcastRefused},
		{"oversized", nodeAnswer(txpool.ErrOversizedData), account.BroadcastRefused},
		{"negative value", nodeAnswer(txpool.ErrNegativeValue), account.BroadcastRefused},
		{"account limit", nodeAnswer(txpool.ErrAccountLimitExceeded), account.BroadcastRefused},
		{"reserved", nodeAnswer(txpool.ErrAlreadyReserved), account.BroadcastRefused},
		{"pool full", nodeAnswer(legacypool.ErrTxPoolOverflow), account.BroadcastRefused},
		{"future replaces pending", nodeAnswer(legacypool.ErrFutureReplacePending), account.BroadcastRefused},
		{"not replay-protected", answerError{-32000, "only replay-protected (EIP-155) transactions allowed over RPC"}, account.BroadcastRefused},
		{"fee cap", answerError{-32000, "tx fee (1.50 ether) exceeds the configured cap (1.00 ether)"}, account.BroadcastRefused},
		{"wrapped refusal", fmt.Errorf("send: %w", nodeAnswer(core.ErrNonceTooLow)), account.BroadcastRefused},

		// The endpoint may have forwarded the transaction before any of these.
		{"internal error", answerError{-32603, "internal error"}, account.BroadcastUnknown},
		{"rate limited", answerError{429, "Too Many Requests"}, account.BroadcastUnknown},
		{"provider limit", answerError{-32005, "daily request count exceeded, request rate limited"}, account.BroadcastUnknown},
		{"upstream timeout", answerError{-32000, "request timed out"}, account.BroadcastUnknown},
		{"empty message", answerError{-32000, ""}, account.BroadcastUnknown},
		{"reverted: not a node refusal", answerError{3, "execution reverted"}, account.BroadcastUnknown},
		{"unknown type is not known", answerError{-32000, "unknown transaction type 9"}, account.BroadcastUnknown},
		{"HTTP error with refusal words", rpc.HTTPError{StatusCode: 502, Status: "502 Bad Gateway", Body: []byte("nonce too low")}, account.BroadcastUnknown},
		{"timeout", context.DeadlineExceeded, account.BroadcastUnknown},
		{"transport", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer"), account.BroadcastUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyBroadcast(tt.err); got != tt.want {
				t.Fatalf("classifyBroadcast(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// FuzzClassifyBroadcast: node messages are untrusted. Whatever they say, a transport failure
// stays unknown, an "already known" answer is sent, and a refusal needs a known marker.
func FuzzClassifyBroadcast(f *testing.F) {
	for _, seed := range []string{"", "nonce too low", "already known", "Known transaction: 0x", "internal error", "unknown transaction type", "INSUFFICIENT FUNDS for gas * price + value", "\xff\x00"} {
		f.Add(-32000, seed)
	}
	f.Fuzz(func(t *testing.T, code int, msg string) {
		if got := classifyBroadcast(errors.New(msg)); got != account.BroadcastUnknown {
			t.Fatalf("transport error %q classified %d", msg, got)
		}
		got := classifyBroadcast(answerError{code, msg})
		lower := strings.ToLower(msg)
		if strings.Contains(lower, "already known") && got != account.BroadcastSent {
			t.Fatalf("%q classified %d, want sent", msg, got)
		}
		if got == account.BroadcastRefused {
			found := false
			for _, m := range refusalMarkers {
				found = found || strings.Contains(lower, m)
			}
			if !found {
				t.Fatalf("%q refused without a known marker", msg)
			}
		}
	})
}
