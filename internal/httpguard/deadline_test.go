package httpguard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

const short = 150 * time.Millisecond

// bodyResult is what a handler saw reading a request body.
type bodyResult struct {
	n   int64
	err error
}

func bodyReader(results chan<- bodyResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		results <- bodyResult{n, err}
		fmt.Fprint(w, n)
	})
}

// sendSlowly writes a request announcing total body bytes, then the body in pieces, pausing
// between them: the pace of the client is the input under test.
func sendSlowly(t *testing.T, addr string, total, piece int, pause time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total)
	go func() {
		for sent := 0; sent < total; sent += piece {
			if _, err := c.Write([]byte(strings.Repeat("x", min(piece, total-sent)))); err != nil {
				return
			}
			time.Sleep(pause)
		}
	}()
	return c
}

func waitBody(t *testing.T, results <-chan bodyResult) bodyResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-liveness(t).Done():
		t.Fatal("the body was neither read nor cut")
		return bodyResult{}
	}
}

// TestSlowLorisBodyIsCut: a body that keeps each gap under the idle bound but arrives at a few
// bytes a second falls below the minimum rate and is cut soon after the grace period.
func TestSlowLorisBodyIsCut(t *testing.T) {
	results := make(chan bodyResult, 1)
	_, addr := serve(t, 100, Deadlines{BodyIdle: short, MinBodyRate: 1000}.Wrap(bodyReader(results)))
	start := time.Now()
	sendSlowly(t, addr, 1_000_000, 1, short/4)
	r := waitBody(t, results)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("slow-loris body read %d bytes, err %v; want a deadline error", r.n, r.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cut only after %s; the grace is %s", took, short)
	}
}

// TestBodyGapIsCut: without a rate floor, a pause longer than the idle bound still cuts.
func TestBodyGapIsCut(t *testing.T) {
	results := make(chan bodyResult, 1)
	_, addr := serve(t, 100, Deadlines{BodyIdle: short}.Wrap(bodyReader(results)))
	sendSlowly(t, addr, 20, 10, 3*short)
	if r := waitBody(t, results); !errors.Is(r.err, os.ErrDeadlineExceeded) || r.n != 10 {
		t.Fatalf("read %d bytes, err %v; want 10 then a deadline error", r.n, r.err)
	}
}

// TestSteadyUploadPasses: an upload that takes several times the idle bound at a reasonable pace
// arrives whole.
func TestSteadyUploadPasses(t *testing.T) {
	results := make(chan bodyResult, 1)
	const idle = 500 * time.Millisecond // wide, so a loaded machine's pauses stay inside it
	_, addr := serve(t, 100, Deadlines{BodyIdle: idle, MinBodyRate: 1000}.Wrap(bodyReader(results)))
	const total = 24 * 8192
	start := time.Now()
	sendSlowly(t, addr, total, 8192, idle/10) // about 160 KB/s for at least two bounds' time
	if r := waitBody(t, results); r.err != nil || r.n != total {
		t.Fatalf("steady upload: %d bytes, %v", r.n, r.err)
	}
	if took := time.Since(start); took < 2*idle {
		t.Fatalf("upload took %s: not long enough to prove anything", took)
	}
}

// TestReadDeadlineClearedAtEndOfBody: once the body is read, a handler may take longer than the
// idle bound (waiting on the upstream) without its request being cancelled.
func TestReadDeadlineClearedAtEndOfBody(t *testing.T) {
	canceled := make(chan bool, 1)
	_, addr := serve(t, 100, Deadlines{BodyIdle: short / 3}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
			canceled <- true
		case <-time.After(short): // the handler's own slow work, longer than the bound
			canceled <- false
		}
		io.WriteString(w, "ok")
	})))
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if <-canceled || resp.StatusCode != 200 {
		t.Fatal("the request was cancelled by a read deadline left behind after its body")
	}
}

// TestUnreadBodyCannotHoldTheConnection: a handler that answers without reading the body (a
// 402) still gets its answer out to a client that stops sending mid-body, and the connection is
// closed: net/http's reading of the leftover body is bounded too.
func TestUnreadBodyCannotHoldTheConnection(t *testing.T) {
	_, addr := serve(t, 100, Deadlines{BodyIdle: short}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusPaymentRequired)
	})))
	c := dial(t, addr)
	// Announce 1000 bytes, send 10, and no more.
	fmt.Fprint(c, "POST /v1/quote HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // liveness guard
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("answer to a stalled body: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if !c.closedByServer(t) {
		t.Fatal("the connection with an unfinished body stays open")
	}
}

// TestStreamThatKeepsSendingIsNeverCut: an event stream longer than the write bound, with pauses
// longer than it between events, reaches a reading client whole.
func TestStreamThatKeepsSendingIsNeverCut(t *testing.T) {
	const events = 6
	_, addr := serve(t, 100, Deadlines{Write: short / 2}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			if err := rc.Flush(); err != nil {
				return
			}
			time.Sleep(short / 2) // the stream's own pace, as long as the write bound
		}
	})))
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || strings.Count(string(body), "data:") != events {
		t.Fatalf("stream cut: %q, %v", body, err)
	}
}

// TestClientThatStopsReadingIsCut: writes to a client whose socket buffer stays full fail once
// the write bound passes.
func TestClientThatStopsReadingIsCut(t *testing.T) {
	failed := make(chan error, 1)
	_, addr := serve(t, 100, Deadlines{Write: short}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				failed <- err
				return
			}
		}
	})))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-failed:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write failed with %v, want a deadline error", err)
		}
	case <-liveness(t).Done():
		t.Fatal("writing to a client that stopped reading never failed")
	}
}

// TestStreamEndingAfterAPauseEndsCleanly: a stream whose last write was long ago still ends with
// a well-formed response; net/http writes its end after the handler returns.
func TestStreamEndingAfterAPauseEndsCleanly(t *testing.T) {
	_, addr := serve(t, 100, Deadlines{Write: short / 3}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		http.NewResponseController(w).Flush() // chunked from here on
		time.Sleep(short)                     // the stream's own pause, longer than the bound
	})))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "first" {
		t.Fatalf("stream end: %q %v", body, err)
	}
}

func TestHijackClearsDeadlines(t *testing.T) {
	_, addr := serve(t, 100, Deadlines{Write: short / 3, BodyIdle: short / 3}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		time.Sleep(short) // longer than both bounds
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nhijacked")
		brw.Flush()
	})))
	c := dial(t, addr)
	if status, body, err := c.get("/"); err != nil || status != 200 || body != "hijacked" {
		t.Fatalf("hijacked connection: %d %q %v", status, body, err)
	}
}
