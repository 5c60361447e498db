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
		want broadcastOutcome
	}{
		{"accepted", nil, broadcastSent},
		{"already in the pool", answerError{-32000, txpool.ErrAlreadyKnown.Error()}, broadcastSent},
		{"old node: known transaction", answerError{-32000, "known transaction: 0x1234"}, broadcastSent},

		{"nonce too low", nodeAnswer(core.ErrNonceTooLow), broadcastRefused},
		{"nonce too low, other case", answerError{-32000, "Nonce too low"}, broadcastRefused},
		{"nonce too high", nodeAnswer(core.ErrNonceTooHigh), broadcastRefused},
		{"replacement underpriced", nodeAnswer(txpool.ErrReplaceUnderpriced), broadcastRefused},
		{"underpriced", nodeAnswer(txpool.ErrUnderpriced), broadcastRefused},
		{"below pool minimum", nodeAnswer(txpool.ErrTxGasPriceTooLow), broadcastRefused},
		{"insufficient funds", nodeAnswer(core.ErrInsufficientFunds), broadcastRefused},
		{"insufficient funds for transfer", nodeAnswer(core.ErrInsufficientFundsForTransfer), broadcastRefused},
		{"intrinsic gas", nodeAnswer(core.ErrIntrinsicGas), broadcastRefused},
		{"floor data gas", nodeAnswer(core.ErrFloorDataGas), broadcastRefused},
		{"block gas limit", nodeAnswer(txpool.ErrGasLimit), broadcastRefused},
		{"gas limit reached", nodeAnswer(core.ErrGasLimitReached), broadcastRefused},
		{"tx gas limit too high", nodeAnswer(core.ErrGasLimitTooHigh), broadcastRefused},
		{"fee cap below base fee", nodeAnswer(core.ErrFeeCapTooLow), broadcastRefused},
		{"tip above fee cap", nodeAnswer(core.ErrTipAboveFeeCap), broadcastRefused},
		{"tx type", nodeAnswer(core.ErrTxTypeNotSupported), broadcastRefused},
		{"sender not an eoa", nodeAnswer(core.ErrSenderNoEOA), broadcastRefused},
		{"invalid sender", nodeAnswer(txpool.ErrInvalidSender), broadcastRefused},
		{"oversized", nodeAnswer(txpool.ErrOversizedData), broadcastRefused},
		{"negative value", nodeAnswer(txpool.ErrNegativeValue), broadcastRefused},
		{"account limit", nodeAnswer(txpool.ErrAccountLimitExceeded), broadcastRefused},
		{"reserved", nodeAnswer(txpool.ErrAlreadyReserved), broadcastRefused},
		{"pool full", nodeAnswer(legacypool.ErrTxPoolOverflow), broadcastRefused},
		{"future replaces pending", nodeAnswer(legacypool.ErrFutureReplacePending), broadcastRefused},
		{"not replay-protected", answerError{-32000, "only replay-protected (EIP-155) transactions allowed over RPC"}, broadcastRefused},
		{"fee cap", answerError{-32000, "tx fee (1.50 ether) exceeds the configured cap (1.00 ether)"}, broadcastRefused},
		{"wrapped refusal", fmt.Errorf("send: %w", nodeAnswer(core.ErrNonceTooLow)), broadcastRefused},

		// The endpoint may have forwarded the transaction before any of these.
		{"internal error", answerError{-32603, "internal error"}, broadcastUnknown},
		{"rate limited", answerError{429, "Too Many Requests"}, broadcastUnknown},
		{"provider limit", answerError{-32005, "daily request count exceeded, request rate limited"}, broadcastUnknown},
		{"upstream timeout", answerError{-32000, "request timed out"}, broadcastUnknown},
		{"empty message", answerError{-32000, ""}, broadcastUnknown},
		{"reverted: not a node refusal", answerError{3, "execution reverted"}, broadcastUnknown},
		{"unknown type is not known", answerError{-32000, "unknown transaction type 9"}, broadcastUnknown},
		{"HTTP error with refusal words", rpc.HTTPError{StatusCode: 502, Status: "502 Bad Gateway", Body: []byte("nonce too low")}, broadcastUnknown},
		{"timeout", context.DeadlineExceeded, broadcastUnknown},
		{"transport", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer"), broadcastUnknown},
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
		if got := classifyBroadcast(errors.New(msg)); got != broadcastUnknown {
			t.Fatalf("transport error %q classified %d", msg, got)
		}
		got := classifyBroadcast(answerError{code, msg})
		lower := strings.ToLower(msg)
		if strings.Contains(lower, "already known") && got != broadcastSent {
			t.Fatalf("%q classified %d, want sent", msg, got)
		}
		if got == broadcastRefused {
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
