package main

import (
	"bufio"
	"bytes"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// TestAuthPlanPaymentsPassVerification sends the plan's requests, signed on the spot and
// pre-signed mixed, through the gateway's own local exact verification: every one must pass,
// carry a nonce of its own, and the payers must take turns.
func TestAuthPlanPaymentsPassVerification(t *testing.T) {
	accounts := devkeys.DevAccounts(firstPayer + payerCount) // public test mnemonic
	offer := exact.Offer{
		Network: "eip155:31337", Asset: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		Name: "USD Coin", Version: "2", PayTo: accounts[payToAccount].Address, MaxTimeoutSeconds: exactMaxTimeoutSeconds,
	}
	req := offer.Requirements(big.NewInt(1000))
	resource := &x402.ResourceInfo{URL: "http://127.0.0.1:9" + quotePath}
	const workers = 3
	plan := newAuthPlan(req, resource, quotePath, "127.0.0.1:9", workers)
	verifier := &exact.Verifier{}
	nonces := map[common.Hash]bool{}
	payers := map[common.Address]int{}
	pay := func(w int) (inline bool) {
		t.Helper()
		raw, inline, err := plan.request(w, 0)
		if err != nil {
			t.Fatal(err)
		}
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil || hr.URL.Path != quotePath || hr.Host != "127.0.0.1:9" {
			t.Fatalf("request %q: %v", raw, err)
		}
		pp, err := x402.DecodePaymentPayload(hr.Header.Get(x402.HeaderPaymentSignature), 0)
		if err != nil {
			t.Fatal(err)
		}
		if pp.Resource == nil || pp.Resource.URL != resource.URL {
			t.Fatalf("payment names resource %+v, want %s", pp.Resource, resource.URL)
		}
		v, err := verifier.VerifyLocal(req, pp)
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
		if nonces[v.Payload.Authorization.Nonce] {
			t.Fatalf("nonce %s used twice", v.Payload.Authorization.Nonce)
		}
		nonces[v.Payload.Authorization.Nonce] = true
		payers[v.Payer]++
		return inline
	}
	for range 2 { // calibration: signed as they go
		for w := range workers {
			if !pay(w) {
				t.Fatal("a request before presigning was not signed on the spot")
			}
		}
	}
	if _, err := plan.presign(4); err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // four pre-signed each, then signed on the spot again
		for w := range workers {
			if inline := pay(w); inline != (i >= 4) {
				t.Fatalf("request %d of worker %d: signed on the spot %v", i, w, inline)
			}
		}
	}
	if got, want := plan.inline.Load(), int64(2*workers+2*workers); got != want {
		t.Fatalf("signed on the spot %d times, want %d", got, want)
	}
	if len(payers) != payerCount {
		t.Fatalf("%d payers took part, want all %d: %v", len(payers), payerCount, payers)
	}
}

func TestParseFlows(t *testing.T) {
	fs, err := parseFlows(" after-body ")
	if err != nil || len(fs) != 1 || fs[0].Name != "after-body" {
		t.Fatalf("parseFlows(after-body) = %v, %v", fs, err)
	}
	fs, err = parseFlows("async,before")
	if err != nil || len(fs) != 2 || fs[0].Name != "async" || fs[1].Name != "before" {
		t.Fatalf("parseFlows(async,before) = %v, %v", fs, err)
	}
	s, _ := fs[0].Config["settlement"].(map[string]any)
	if a, _ := s["async"].(map[string]any); s["flow"] != "async" || a["maxUnsettled"] == nil {
		t.Fatalf("the async flow's configuration %v selects the flow and raises its bounds", fs[0].Config)
	}
	for list, want := range map[string]string{
		"sideways":              "unknown flow",
		"after-body,after-body": "twice",
		" , ":                   "names no flow",
	} {
		if _, err := parseFlows(list); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFlows(%q) = %v, want an error saying %q", list, err, want)
		}
	}
}

func TestMergeConfigMergesMapsAndReplacesTheRest(t *testing.T) {
	base := map[string]any{
		"listen":     "127.0.0.1:0",
		"settlement": map[string]any{"maxFeePerGas": "100 gwei", "replaceAfter": "20s"},
		"routes":     []any{"a"},
	}
	mergeConfig(base, map[string]any{
		"settlement": map[string]any{"flow": "async", "replaceAfter": "5s"},
		"routes":     []any{"b", "c"},
	})
	s := base["settlement"].(map[string]any)
	if s["flow"] != "async" || s["replaceAfter"] != "5s" || s["maxFeePerGas"] != "100 gwei" || base["listen"] != "127.0.0.1:0" {
		t.Fatalf("merged %v", base)
	}
	if r := base["routes"].([]any); len(r) != 2 {
		t.Fatalf("routes %v, want the override", r)
	}
	mergeConfig(base, nil) // a flow with the defaults
}

func TestChainReportComparesFlowsWithTheOfficialStack(t *testing.T) {
	phase := func(server, flow string, conns int, rps, p50, p99 float64, failures int) exactPhase {
		return exactPhase{Server: server, Flow: flow, Connections: conns, Result: phaseResult{
			RPS: rps, Failures: failures, Latency: latencyStats{P50: p50, P99: p99},
		}}
	}
	c := &chainReport{Phases: []exactPhase{
		phase("official", "", 1, 50, 18_000, 40_000, 0),
		phase("payper after-body", "after-body", 1, 100, 5_000, 20_000, 0),
		phase("official", "", 8, 70, 100_000, 200_000, 0),
		phase("payper after-body", "after-body", 8, 700, 10_000, 30_000, 3), // failed: no ratio
		phase("official", "", 32, 100, 300_000, 600_000, 0),
		phase("payper after-body", "after-body", 32, 400, 70_000, 90_000, 0),
	}}
	c.compare()
	if len(c.Comparisons) != 2 {
		t.Fatalf("comparisons %+v, want 1 and 32 connections only", c.Comparisons)
	}
	one := c.Comparisons[0]
	if one.Connections != 1 || one.ThroughputRatio != 2 || one.P50Ratio != 5_000.0/18_000 || one.P99Ratio != 0.5 {
		t.Fatalf("1 connection: %+v", one)
	}
	want := map[string]targetVerdict{
		"after-body paid req/s at 32 connections >= 5x the official stack's": {Measured: true, Value: 4, Met: false},
		"after-body p50 at 1 connection(s) <= 1/3 of the official stack's":   {Measured: true, Value: 5_000.0 / 18_000, Met: true},
		"async paid req/s at 32 connections >= 20x the official stack's":     {},
	}
	if len(c.Targets) != len(want) {
		t.Fatalf("targets %+v", c.Targets)
	}
	for _, v := range c.Targets {
		w, ok := want[v.Target]
		w.Target = v.Target
		if !ok || v != w {
			t.Errorf("target %+v, want %+v", v, w)
		}
	}
}

func TestParseExactFlags(t *testing.T) {
	o, err := parseFlags([]string{"-mode", "exact"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.connections) != 3 || o.connections[0] != 1 || o.connections[1] != 8 || o.connections[2] != 32 ||
		strings.Join(o.chains, ",") != "anvil,dev" || !o.hasFlow("after-body") || !o.hasFlow("async") || !o.official || o.sseRequests != 20 {
		t.Fatalf("defaults %+v", o)
	}
	for _, args := range [][]string{
		{"-mode", "exact", "-connections", "1,0"},
		{"-mode", "exact", "-chains", "anvil,sepolia"},
		{"-mode", "exact", "-chains", "dev,dev"},
		{"-mode", "exact", "-flows", "sideways"},
		{"-mode", "exact", "-duration", "10m"}, // longer than a pre-signed payment stays valid
		{"-mode", "sideways"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func TestListeningAddrReadsTheGatewaysLogLine(t *testing.T) {
	addr, ok := listeningAddr(`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"gateway listening","addr":"127.0.0.1:40001","routes":2}`)
	if !ok || addr != "127.0.0.1:40001" {
		t.Fatalf("got %q, %v", addr, ok)
	}
	for _, line := range []string{`{"msg":"settled","addr":"127.0.0.1:1"}`, "gateway listening 127.0.0.1:1", `{"msg":"gateway listening"}`} {
		if _, ok := listeningAddr(line); ok {
			t.Errorf("accepted %q", line)
		}
	}
}

// TestReadEventStopsAtTheFirstEvent reads from a stream that stays open after its first
// event: the read must end with the event, not wait for the stream.
func TestReadEventStopsAtTheFirstEvent(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- readEvent(bufio.NewReader(r)) }()
	if _, err := io.WriteString(w, ": comment\r\ndata: {\"n\":1}\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("readEvent still waiting after the first event was written")
	}
	go func() { done <- readEvent(bufio.NewReader(strings.NewReader("data: cut"))) }()
	if err := <-done; err == nil {
		t.Fatal("a stream cut inside its first event read as an event")
	}
}

// TestChildStopEndsItsProcessGroup starts a shell that starts a process of its own: stop must
// end both, whatever the shell does with the signal.
func TestChildStopEndsItsProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	cmd := exec.Command("sh", "-c", `trap "" TERM; sleep 600 & echo "READY $!"; wait`)
	c, pid, err := startChild(t.Context(), "shell", cmd, func(line string) (string, bool) {
		p, ok := strings.CutPrefix(line, "READY ")
		return p, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	c.grace = 50 * time.Millisecond // the shell ignores SIGTERM: let it come to SIGKILL soon
	grandchild, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.cpuTime(); !ok {
		t.Fatal("no CPU time for a running child")
	}
	c.stop()
	c.stop() // a second stop is harmless
	if c.exited() == nil {
		t.Fatal("the shell still runs")
	}
	// The kill is sent by the time stop returns; the kernel may still be tearing the process
	// down, and nothing here can wait on a process that is not our child: look until it is gone.
	for deadline := time.Now().Add(10 * time.Second); alive(grandchild); {
		if time.Now().After(deadline) {
			t.Fatalf("the shell's child %d still runs", grandchild)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid names a process that is neither gone nor a zombie waiting for a
// parent to reap it.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}
