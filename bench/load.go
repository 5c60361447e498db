package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/payper/payper/x402"
)

// The load generator is the same for every target: closed loop, one goroutine and one
// keep-alive HTTP/1.1 connection per worker, requests written as ready-made bytes and
// responses read with net/http's parser. Only the request bytes and the response check differ.

// target is what one phase sends requests to.
type target struct {
	name string
	addr string // host:port
	// request returns worker w's k-th request, and whether it was signed on the spot.
	request func(w, k int) ([]byte, bool, error)
	// check judges a response whose body has been read.
	check func(*http.Response) error
	// stopOnFailure ends a worker at its first failure: after a voucher that was not charged,
	// every later voucher of its channel is out of sequence.
	stopOnFailure bool
	// timeout bounds each request (0: none); a server that stops answering then fails the
	// request instead of hanging the run.
	timeout time.Duration
	// children are processes that serve this target (the server, the chain), whose CPU use over
	// the measured window the phase reports by role.
	children []roleChild
}

// roleChild is a child process and the role it plays for a target ("server", "chain").
type roleChild struct {
	role  string
	child *child
}

// phaseResult is one phase's measurement.
type phaseResult struct {
	Name     string       `json:"name"`
	Requests int          `json:"requests"` // completed successfully inside the measured window
	Served   int          `json:"served"`   // completed successfully, warm-up included
	Seconds  float64      `json:"seconds"`
	RPS      float64      `json:"requestsPerSecond"`
	Latency  latencyStats `json:"latency"`
	Failures int          `json:"failures"` // during warm-up or measurement
	// FailureSamples are the first few distinct failures, for the report.
	FailureSamples []string `json:"failureSamples,omitempty"`
	// SignedInline counts vouchers a worker had to sign during the phase.
	SignedInline int `json:"signedInline,omitempty"`
	// CPUPercent is the whole process's CPU use over the measured window (200 = two cores
	// busy), and CPUPerRequestMicros that CPU time divided by the measured requests: generator,
	// server under test, upstream and chain together.
	CPUPercent          float64 `json:"cpuPercent"`
	CPUPerRequestMicros float64 `json:"cpuPerRequestMicros"`
	// OtherCPUPercent is what other processes used meanwhile and StealPercent what the
	// hypervisor took (Linux only): noise the comparison cannot control.
	OtherCPUPercent float64 `json:"otherCPUPercent"`
	StealPercent    float64 `json:"stealPercent"`
	// ChildCPUPercent is the CPU the target's child processes used over the measured window,
	// by role (exact mode; included in OtherCPUPercent).
	ChildCPUPercent map[string]float64 `json:"childCPUPercent,omitempty"`
}

type workerResult struct {
	served    int
	latencies []time.Duration
	failures  int
	samples   []string
	inline    int
}

// runPhase runs workers against t for warmup (not measured), then for duration. A request is
// measured when it completes inside the measured window; its latency is from the first byte
// written to the last byte of the body read.
func runPhase(ctx context.Context, t target, workers int, warmup, duration time.Duration, onMeasure func()) phaseResult {
	start := time.Now().Add(20 * time.Millisecond) // let every worker reach the line
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	results := make([]workerResult, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w] = runWorker(ctx, t, w, start, measureFrom, end)
		}()
	}
	sleepUntil(ctx, measureFrom)
	if onMeasure != nil {
		onMeasure()
	}
	cpuFrom, machineFrom, childFrom := processCPU(), readMachineCPU(), childCPU(t.children)
	sleepUntil(ctx, end)
	cpu, machine, childTo := processCPU()-cpuFrom, readMachineCPU(), childCPU(t.children)
	wg.Wait()

	r := phaseResult{Name: t.name, Seconds: duration.Seconds()}
	var all []time.Duration
	for _, wr := range results {
		all = append(all, wr.latencies...)
		r.Failures += wr.failures
		r.Served += wr.served
		r.SignedInline += wr.inline
		for _, s := range wr.samples {
			if len(r.FailureSamples) < 5 && !slices.Contains(r.FailureSamples, s) {
				r.FailureSamples = append(r.FailureSamples, s)
			}
		}
	}
	r.Requests = len(all)
	r.RPS = float64(r.Requests) / duration.Seconds()
	r.Latency = summarize(all)
	r.CPUPercent = 100 * cpu.Seconds() / duration.Seconds()
	if r.Requests > 0 {
		r.CPUPerRequestMicros = micros(cpu / time.Duration(r.Requests))
	}
	for role, to := range childTo {
		if from, ok := childFrom[role]; ok {
			if r.ChildCPUPercent == nil {
				r.ChildCPUPercent = map[string]float64{}
			}
			r.ChildCPUPercent[role] = 100 * (to - from).Seconds() / duration.Seconds()
		}
	}
	if machineFrom.ok && machine.ok {
		r.OtherCPUPercent = max(0, 100*(machine.busy-machineFrom.busy-cpu).Seconds()/duration.Seconds())
		r.StealPercent = 100 * (machine.steal - machineFrom.steal).Seconds() / duration.Seconds()
	}
	return r
}

func runWorker(ctx context.Context, t target, w int, start, measureFrom, end time.Time) workerResult {
	var res workerResult
	res.latencies = make([]time.Duration, 0, 4096)
	fail := func(err error) {
		res.failures++
		if len(res.samples) < 3 {
			res.samples = append(res.samples, err.Error())
		}
	}
	conn := &clientConn{addr: t.addr, timeout: t.timeout}
	defer conn.close()
	sleepUntil(ctx, start)
	for k := 0; ctx.Err() == nil; k++ {
		if !time.Now().Before(end) {
			break
		}
		req, inline, err := t.request(w, k)
		if inline {
			res.inline++
		}
		if err != nil {
			fail(fmt.Errorf("build request: %w", err))
			break
		}
		sent := time.Now()
		resp, err := conn.do(req)
		done := time.Now()
		if err == nil {
			err = t.check(resp)
		}
		if err != nil {
			fail(err)
			if t.stopOnFailure {
				break
			}
			continue
		}
		res.served++
		if !done.Before(measureFrom) && done.Before(end) {
			res.latencies = append(res.latencies, done.Sub(sent))
		}
	}
	return res
}

// childCPU samples the CPU time of each child by role.
func childCPU(children []roleChild) map[string]time.Duration {
	if len(children) == 0 {
		return nil
	}
	out := make(map[string]time.Duration, len(children))
	for _, rc := range children {
		if d, ok := rc.child.cpuTime(); ok {
			out[rc.role] = d
		}
	}
	return out
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// clientConn is one keep-alive HTTP/1.1 connection, redialled when the server closes it.
type clientConn struct {
	addr    string
	timeout time.Duration // per request, 0 for none
	c       net.Conn
	br      *bufio.Reader
}

// do writes a whole request and reads the response, body included.
func (cc *clientConn) do(req []byte) (*http.Response, error) {
	if cc.c == nil {
		c, err := net.Dial("tcp", cc.addr)
		if err != nil {
			return nil, err
		}
		cc.c, cc.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	if cc.timeout > 0 {
		cc.c.SetDeadline(time.Now().Add(cc.timeout))
	}
	if _, err := cc.c.Write(req); err != nil {
		cc.close()
		return nil, err
	}
	resp, err := http.ReadResponse(cc.br, nil)
	if err != nil {
		cc.close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		cc.close()
		return nil, fmt.Errorf("read body: %w", err)
	}
	if resp.Close {
		cc.close()
	}
	return resp, nil
}

func (cc *clientConn) close() {
	if cc.c != nil {
		cc.c.Close()
		cc.c, cc.br = nil, nil
	}
}

// checkOK accepts any 200.
func checkOK(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// checkPaidFast accepts a 200 whose PAYMENT-RESPONSE says success. It decodes the header with
// plain encoding/json rather than the strict x402 codec: the generator should spend as little
// CPU as it can in the gateway phase, and the success flag is all it judges here (the strict
// codec checks the deposits during set-up).
func checkPaidFast(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return checkPaid(resp) // slow path, for its description of the failure
	}
	h := resp.Header.Get(x402.HeaderPaymentResponse)
	if h == "" {
		return fmt.Errorf("status 200 without PAYMENT-RESPONSE")
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("PAYMENT-RESPONSE: %w", err)
	}
	var s struct {
		Success      bool   `json:"success"`
		ErrorReason  string `json:"errorReason"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("PAYMENT-RESPONSE: %w", err)
	}
	if !s.Success {
		return fmt.Errorf("PAYMENT-RESPONSE not successful: %s %s", s.ErrorReason, s.ErrorMessage)
	}
	return nil
}
