package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payper/payper/config"
	"github.com/payper/payper/internal/failpoint"
)

// Environment of a gateway child process (the test binary re-run by startGatewayProcess).
const (
	envGatewayChild = "PAYPER_APP_GATEWAY_CHILD" // path of the gateway's configuration, as JSON
	envInFlightFor  = "PAYPER_APP_IN_FLIGHT_FOR" // how long a channel charge may stay in flight
	envDevChild     = "PAYPER_APP_DEV_CHILD"     // data dir of a whole dev environment to run
	envQueueOff     = "PAYPER_APP_QUEUE_OFF"     // "1": the child leaves its settlement queue alone
)

// devChild runs the whole dev environment (chain, demo API, gateway) in dir, as `payper dev`
// does, reconciling at once and every 200 ms, and prints "ready GATEWAY_URL RPC_URL".
func devChild(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dev, err := StartDev(ctx, DevOptions{DataDir: dir, Listen: "127.0.0.1:0", RPCListen: "127.0.0.1:0", Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		return 1
	}
	defer dev.Close()
	dev.Gateway.reconciler.MinAge = time.Nanosecond
	dev.Gateway.reconcileEvery = 200 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv(envInFlightFor)); err == nil && dev.Gateway.channels != nil {
		dev.Gateway.channels.InFlightFor = d
	}
	fmt.Println("ready " + dev.Info.GatewayURL + " " + dev.Info.RPCURL)
	if err := dev.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

func TestMain(m *testing.M) {
	if path := os.Getenv(envGatewayChild); path != "" {
		os.Exit(gatewayChild(path))
	}
	if dir := os.Getenv(envDevChild); dir != "" {
		os.Exit(devChild(dir))
	}
	os.Exit(m.Run())
}

// gatewayChild runs a gateway from the configuration at path, reconciling unfinished payments
// at once and every 200 ms, and prints "listening ADDR" once it serves.
func gatewayChild(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cfg config.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gw, err := NewGateway(ctx, &cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	defer gw.Close()
	// A test restart stands for a restart long after the crash: nothing is too young to recover.
	gw.reconciler.MinAge = time.Nanosecond
	gw.reconcileEvery = 200 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv(envInFlightFor)); err == nil && gw.channels != nil {
		gw.channels.InFlightFor = d
	}
	gw.queueOff = os.Getenv(envQueueOff) == "1"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening " + ln.Addr().String())
	if err := gw.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// gatewayProcess is a gateway running in a child process.
type gatewayProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	reached chan string // failpoints the child reached
	exited  chan struct{}
}

// writeConfig stores cfg where a gateway child reads it.
func writeConfig(t *testing.T, cfg *config.Config) string {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGatewayProcess starts a gateway child on the configuration at cfgPath, armed to stop at
// step when step is not empty, and waits until it serves.
func startGatewayProcess(t *testing.T, cfgPath, step string, env ...string) *gatewayProcess {
	t.Helper()
	p, fields := startChild(t, "listening ", append(env, envGatewayChild+"="+cfgPath, failpoint.Env+"="+step)...)
	p.url = "http://" + fields[0]
	return p
}

// startChild re-runs the test binary with env added, and waits for the line on its stdout that
// starts with ready, returning that line's fields after the prefix.
func startChild(t *testing.T, ready string, env ...string) (*gatewayProcess, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProcess{t: t, cmd: cmd, reached: make(chan string, 4), exited: make(chan struct{})}
	t.Cleanup(p.kill)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if step, ok := strings.CutPrefix(sc.Text(), failpoint.Reached); ok {
				p.reached <- step
				continue
			}
			t.Logf("child: %s", sc.Text())
		}
	}()
	lines := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), ready); ok {
				lines <- strings.Fields(rest)
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	select {
	case fields := <-lines:
		return p, fields
	case <-p.exited:
		t.Fatal("the child process exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("the child process did not get ready")
	}
	return nil, nil
}

// waitStep waits until the child stops at step.
func (p *gatewayProcess) waitStep(step string) {
	p.t.Helper()
	select {
	case got := <-p.reached:
		if got != step {
			p.t.Fatalf("stopped at %s, want %s", got, step)
		}
	case <-p.exited:
		p.t.Fatalf("the gateway exited before reaching %s", step)
	case <-time.After(60 * time.Second):
		p.t.Fatalf("the gateway never reached %s", step)
	}
}

// kill ends the child with SIGKILL, as a crash would, and waits for it.
func (p *gatewayProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
