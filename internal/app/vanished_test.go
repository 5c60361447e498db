package app

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/store"
)

// TestSettlementOnAResetChainIsMarkedVanished: a payment settles, then the dev chain is reset (its
// data dir removed) under the same gateway database, so the settlement transaction no longer
// exists. When the gateway starts again it marks the payment vanished and logs an error naming
// the payment, the transaction, the payer and the amount.
func TestSettlementOnAResetChainIsMarkedVanished(t *testing.T) {
	dir := t.TempDir()
	first := startDevIn(t, dir, nil, nil)
	req := challenge(t, "GET", first.dev.Info.GatewayURL+"/v1/quote")
	res := send(t, "GET", first.dev.Info.GatewayURL+"/v1/quote", encode(t, signPayment(t, account(2).Key, req)))
	if res.status != http.StatusOK || res.settlement == nil {
		t.Fatalf("paid request: %d %s", res.status, res.body)
	}
	settled, err := first.dev.Gateway.Store().ListPayments(t.Context(), store.PaymentFilter{Status: store.StatusSettled})
	if err != nil || len(settled) != 1 {
		t.Fatalf("settled payments: %+v, %v", settled, err)
	}
	paid := settled[0]
	first.stop()

	if err := os.RemoveAll(filepath.Join(dir, "chain")); err != nil {
		t.Fatal(err)
	}
	logs := &recordingHandler{}
	second := startDevIn(t, dir, slog.New(logs), func(d *Dev) {
		// Later, when the settlement is old enough to be judged (see Reconciler.MinAge).
		d.Gateway.reconciler.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	})
	// The listener is open before Serve runs its start-up reconciliation, and requests are
	// answered only after it: an answer means the check is done.
	if resp, err := http.Get(second.dev.Info.GatewayURL + "/v1/health"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	p, err := second.dev.Gateway.Store().GetPayment(t.Context(), paid.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != store.StatusVanished || p.TxHash != paid.TxHash || p.ErrorReason == "" {
		t.Fatalf("after the chain reset the payment is %s (tx %s, reason %q), want vanished", p.Status, p.TxHash, p.ErrorReason)
	}
	want := map[string]string{"payment": slog.Int64Value(paid.ID).String(), "tx": paid.TxHash,
		"payer": paid.Payer, "amount": paid.Amount.String()}
	if !logs.has(slog.LevelError, want) {
		t.Fatalf("no error logged with %v; logged: %v", want, logs.all())
	}
}

// devRun is a dev environment serving in the background.
type devRun struct {
	dev  *Dev
	stop func()
}

// startDevIn starts a dev environment on dataDir, lets prepare (if any) adjust it, and serves it
// until stop (or the test's end).
func startDevIn(t *testing.T, dataDir string, log *slog.Logger, prepare func(*Dev)) *devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := StartDev(ctx, DevOptions{DataDir: dataDir, Listen: "127.0.0.1:0", RPCListen: "127.0.0.1:0", Logger: log})
	if err != nil {
		cancel()
		t.Fatalf("start dev: %v", err)
	}
	if prepare != nil {
		prepare(dev)
	}
	served := make(chan struct{})
	go func() { defer close(served); dev.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-served
			dev.Close()
		})
	}
	t.Cleanup(stop)
	return &devRun{dev: dev, stop: stop}
}

// recordingHandler keeps every log record, for tests that check what was logged.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// WithAttrs and WithGroup drop what they are given: the tests look at a record's own attributes.
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// has reports whether a record at level carries every attribute of want (compared as text).
func (h *recordingHandler) has(level slog.Level, want map[string]string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Level != level {
			continue
		}
		found := 0
		r.Attrs(func(a slog.Attr) bool {
			if v, ok := want[a.Key]; ok && a.Value.String() == v {
				found++
			}
			return true
		})
		if found == len(want) {
			return true
		}
	}
	return false
}

func (h *recordingHandler) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}
