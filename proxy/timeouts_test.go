package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payper/payper/internal/faultupstream"
)

// bound is a short timeout for tests; the liveness guard below is far longer.
const bound = 150 * time.Millisecond

// outcomes is a Breaker that passes on what it is told and refuses while refuse is set.
type outcomes struct {
	told   chan bool
	refuse error
}

func newOutcomes() *outcomes { return &outcomes{told: make(chan bool, 64)} }

func (o *outcomes) Allow() (func(bool), error) {
	if o.refuse != nil {
		return nil, o.refuse
	}
	return func(ok bool) { o.told <- ok }, nil
}

// next waits for the outcome of the next finished request. The proxy reports it once the
// handler returns, which may be just after the client has its answer.
func (o *outcomes) next(t *testing.T) bool {
	t.Helper()
	select {
	case ok := <-o.told:
		return ok
	case <-liveness(t).Done():
		t.Fatal("the breaker was never told the outcome")
		return false
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // nothing listens there afterwards
	return ln.Addr().String()
}

func timed(t *testing.T, url string) (*http.Response, []byte, time.Duration, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(liveness(t), "GET", url, nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, time.Since(start), err
}

func TestTimeoutsAnswer504(t *testing.T) {
	up := faultupstream.Start(t)
	blockingDial := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	cases := []struct {
		name      string
		path      string
		timeouts  Timeouts
		transport http.RoundTripper
	}{
		{"response headers", "/hang", Timeouts{Header: bound}, nil},
		{"slow error status", "/status?code=503&after=10s", Timeouts{Header: bound}, nil},
		{"total before headers", "/hang", Timeouts{Total: bound}, nil},
		{"connect", "/ok", Timeouts{Connect: bound}, blockingDial},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newOutcomes()
			gw := gateway(t, up.URL, Options{Timeouts: tc.timeouts, Transport: tc.transport, Breaker: b})
			resp, body, took, err := timed(t, gw.URL+tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusGatewayTimeout || string(body) != bodyTimeout ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q, want 504 %q", resp.StatusCode, body, bodyTimeout)
			}
			if took < bound {
				t.Fatalf("answered after %s, before the %s bound", took, bound)
			}
			if b.next(t) {
				t.Fatal("a timeout was reported to the breaker as a success")
			}
		})
	}
}

// TestStreamOutlivesIdleBound: a body that keeps coming is never cut by the idle bound, however
// long it runs in total; one that stops is.
func TestStreamOutlivesIdleBound(t *testing.T) {
	up := faultupstream.Start(t)
	b := newOutcomes()
	// The bound is wide against the pace, so that a loaded machine's scheduling pauses stay
	// inside it; the stream still runs longer than the bound in total.
	const idle = time.Second
	gw := gateway(t, up.URL, Options{Timeouts: Timeouts{Header: idle, Idle: idle}, Breaker: b})
	const chunks = 30
	every := idle / 25
	resp, body, took, err := timed(t, gw.URL+"/slow?chunks=30&every="+every.String())
	if err != nil || resp.StatusCode != 200 || len(body) != chunks*faultupstream.ChunkSize {
		t.Fatalf("slow stream: %v, %d bytes", err, len(body))
	}
	if took < idle {
		t.Fatalf("the stream took %s, not longer than the idle bound: the test proves nothing", took)
	}
	if !b.next(t) {
		t.Fatal("a complete stream was reported as a failure")
	}

	gw = gateway(t, up.URL, Options{Timeouts: Timeouts{Idle: bound}, Breaker: b})
	req, _ := http.NewRequestWithContext(liveness(t), "GET", gw.URL+"/stall?chunks=2", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stall: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil || string(got) != faultupstream.Chunk(0)+faultupstream.Chunk(1) {
		t.Fatalf("a stalled body must be cut after what arrived: %q, %v", got, err)
	}
	if b.next(t) {
		t.Fatal("a body cut by the idle bound was reported as a success")
	}
}

func TestTotalBoundCutsALiveStream(t *testing.T) {
	up := faultupstream.Start(t)
	gw := gateway(t, up.URL, Options{Timeouts: Timeouts{Idle: time.Minute, Total: bound}})
	req, _ := http.NewRequestWithContext(liveness(t), "GET", gw.URL+"/slow?chunks=1000&every=10ms", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("the total bound did not cut the stream (%d bytes)", len(got))
	}
}

// TestWithTimeoutsOverrides: a request's context bound replaces the proxy's own.
func TestWithTimeoutsOverrides(t *testing.T) {
	up := faultupstream.Start(t)
	p, err := New(mustURL(t, up.URL), Options{Timeouts: Timeouts{Header: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r.WithContext(WithTimeouts(r.Context(), Timeouts{Header: bound})))
	}))
	defer gw.Close()
	resp, _, _, err := timed(t, gw.URL+"/hang")
	if err != nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("%v %v: the per-request bound was not used", resp, err)
	}
}

// TestUploadProgressKeepsHeaderBound: the response-header bound restarts while the upstream
// accepts request bytes, so a slow but steady upload longer than it passes.
func TestUploadProgressKeepsHeaderBound(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Write([]byte(itoa(n)))
	}))
	defer up.Close()
	const header = time.Second // wide against the pace, so a loaded machine's pauses stay inside it
	gw := gateway(t, up.URL, Options{Timeouts: Timeouts{Header: header}})
	pr, pw := io.Pipe()
	go func() {
		for range 6 {
			time.Sleep(header / 5) // the pace of a slow client; it is the input, not synchronisation
			if _, err := pw.Write([]byte(strings.Repeat("x", 1000))); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(liveness(t), "POST", gw.URL+"/upload", pr)
	start := time.Now()
	resp, body := do(t, req)
	if resp.StatusCode != 200 || string(body) != "6000" {
		t.Fatalf("slow upload: %d %q", resp.StatusCode, body)
	}
	if took := time.Since(start); took < header {
		t.Fatalf("upload took %s, not longer than the bound: the test proves nothing", took)
	}
}

func TestBreakerOutcomes(t *testing.T) {
	up := faultupstream.Start(t)
	cases := []struct {
		path   string
		status int
		ok     bool
	}{
		{"/ok", 200, true},
		{"/status?code=404", 404, true},
		{"/status?code=500", 500, true},
		{"/status?code=502", 502, false},
		{"/status?code=503", 503, false},
		{"/status?code=504", 504, false},
		{"/reset", 502, false},
	}
	for _, tc := range cases {
		b := newOutcomes()
		gw := gateway(t, up.URL, Options{Breaker: b})
		resp, _, _, err := timed(t, gw.URL+tc.path)
		if err != nil || resp.StatusCode != tc.status {
			t.Fatalf("%s: %v %v, want %d", tc.path, resp, err, tc.status)
		}
		if got := b.next(t); got != tc.ok {
			t.Errorf("%s: breaker told ok=%v, want %v", tc.path, got, tc.ok)
		}
	}
	down := gateway(t, "http://"+deadAddr(t), Options{Breaker: newOutcomes()})
	if resp, _, _, _ := timed(t, down.URL+"/"); resp.StatusCode != 502 {
		t.Fatalf("refused connection: %d", resp.StatusCode)
	}
}

type openError struct{ wait time.Duration }

func (e openError) Error() string             { return "open" }
func (e openError) RetryAfter() time.Duration { return e.wait }

func TestBreakerRefusalAnswers503(t *testing.T) {
	up := faultupstream.Start(t)
	b := &outcomes{refuse: openError{wait: 2500 * time.Millisecond}}
	gw := gateway(t, up.URL, Options{Breaker: b})
	resp, body, _, err := timed(t, gw.URL+"/ok")
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "3" || string(body) != bodyOpen {
		t.Fatalf("refused request: %v %v %q", resp, err, body)
	}
	if up.Calls() != 0 {
		t.Fatal("a refused request reached the upstream")
	}
}

// TestClientFaultsDoNotCountAgainstUpstream: a client whose body breaks off, or who leaves
// before the answer, must never trip the breaker.
func TestClientFaultsDoNotCountAgainstUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("read"))
	}))
	defer up.Close()
	b := newOutcomes()
	gw := gateway(t, up.URL, Options{Breaker: b})

	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	// Announce 100 bytes, send 5, then half-close: the body can never complete.
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello")
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken request body: %v %v, want 400", resp, err)
	}
	if !b.next(t) {
		t.Fatal("a client's broken body was counted against the upstream")
	}
}

func TestTimeoutErrorIsATimeout(t *testing.T) {
	var err error = &TimeoutError{Phase: phaseHeader, After: time.Second}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() || !strings.Contains(err.Error(), "response headers") {
		t.Fatal(err)
	}
	if RetryAfterSeconds(0) != "1" || RetryAfterSeconds(1001*time.Millisecond) != "2" || RetryAfterSeconds(5*time.Second) != "5" {
		t.Fatal("RetryAfterSeconds rounds up to whole seconds, at least 1")
	}
}

// TestUpgradeReportsAtOnce: an upgraded connection works through the bounded transport, and
// the breaker hears the upstream answered as soon as it switches protocols, not when the
// connection ends hours later.
func TestUpgradeReportsAtOnce(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client leaves
	}))
	defer up.Close()
	b := newOutcomes()
	gw := gateway(t, up.URL, Options{Breaker: b, Timeouts: Timeouts{Header: bound, Idle: bound, Total: bound}})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if !b.next(t) {
		t.Fatal("a protocol switch was reported as a failure")
	}
	time.Sleep(2 * bound) // longer than every bound: an upgraded connection is not an exchange
	io.WriteString(c, "ping\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through the upgraded connection: %q %v", line, err)
	}
}
