package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// The SSE measurement: the target is that a paid Server-Sent Events route delivers its
// first event within 1 ms of the same route unpriced. The upstream sends one event at once and
// a second one sseHold later, so a gateway that buffers the paid answer shows the hold (and the
// settlement) in its time to first event, and one that streams does not.
const (
	ssePaidPath     = "/v1/stream"      // priced on every gateway under test
	sseFreePath     = "/v1/stream-free" // not listed, so it passes free
	sseHold         = 200 * time.Millisecond
	sseTargetMicros = 1000
)

// serveEvents is the upstream's event stream.
func serveEvents(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	io.WriteString(w, "data: {\"n\":1}\n\n")
	if flusher != nil {
		flusher.Flush()
	}
	select {
	case <-time.After(sseHold):
	case <-r.Context().Done():
		return
	}
	io.WriteString(w, "data: {\"n\":2}\n\n")
}

// sseResult compares a flow's paid SSE route with the same route unpriced.
type sseResult struct {
	Flow              string   `json:"flow"`
	Requests          int      `json:"requestsEach"`
	PaidP50Micros     float64  `json:"paidFirstEventP50Micros"`
	UnpricedP50Micros float64  `json:"unpricedFirstEventP50Micros"`
	DeltaMicros       float64  `json:"deltaMicros"`
	TargetMicros      float64  `json:"targetMicros"`
	Met               bool     `json:"targetMet"`
	Failures          []string `json:"failures,omitempty"`
}

// measureSSE sends n paid requests to the stream route, then n unpriced, one at a time on a
// fresh connection each, and compares the medians of their time to first event: from the
// request's first byte written to the end of the first event read.
func measureSSE(ctx context.Context, s serverUnderTest, n int) (sseResult, error) {
	res := sseResult{Flow: s.flow, Requests: n, TargetMicros: sseTargetMicros}
	setup := &http.Client{Timeout: time.Minute}
	defer setup.CloseIdleConnections()
	offer, resource, err := fetchExactOffer(ctx, setup, "http://"+s.addr+ssePaidPath)
	if err != nil {
		return res, fmt.Errorf("%s: %w", s.label, err)
	}
	plan := newAuthPlan(offer, resource, ssePaidPath, s.addr, 1)
	if _, err := plan.presign(n); err != nil {
		return res, err
	}
	defer plan.release()
	var paid, free []time.Duration
	for range n {
		req, _, err := plan.request(0, 0)
		if err != nil {
			return res, err
		}
		if d, err := firstEvent(ctx, s.addr, req, checkPaidFast); err != nil {
			res.Failures = append(res.Failures, "paid: "+err.Error())
		} else {
			paid = append(paid, d)
		}
	}
	for range n {
		if d, err := firstEvent(ctx, s.addr, buildRequestFor(sseFreePath, s.addr, ""), checkOK); err != nil {
			res.Failures = append(res.Failures, "unpriced: "+err.Error())
		} else {
			free = append(free, d)
		}
	}
	res.PaidP50Micros, res.UnpricedP50Micros = summarize(paid).P50, summarize(free).P50
	res.DeltaMicros = res.PaidP50Micros - res.UnpricedP50Micros
	res.Met = len(res.Failures) == 0 && len(paid) > 0 && res.DeltaMicros <= res.TargetMicros
	return res, nil
}

// firstEvent sends req on a new connection and returns how long the first event took to
// arrive; check judges the response's status and headers.
func firstEvent(ctx context.Context, addr string, req []byte, check func(*http.Response) error) (time.Duration, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(exactRequestTimeout))
	sent := time.Now()
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := check(resp); err != nil {
		return 0, err
	}
	br := bufio.NewReader(resp.Body)
	if err := readEvent(br); err != nil {
		return 0, fmt.Errorf("before the first event ended: %w", err)
	}
	took := time.Since(sent)
	io.Copy(io.Discard, br) // the rest of the stream, so the server finishes normally
	return took, nil
}

// readEvent reads one server-sent event: up to and including the blank line that ends it.
func readEvent(br *bufio.Reader) error {
	var last byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return err
		}
		if b == '\n' && last == '\n' {
			return nil
		}
		if b != '\r' {
			last = b
		}
	}
}
