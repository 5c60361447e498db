package httpguard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// liveness bounds a test that would otherwise hang; it is a guard, not a timing assertion.
func liveness(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve runs h on a loopback listener limited to max connections.
func serve(t *testing.T, max int, h http.Handler) (*Limiter, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimiter(ln, max, nil)
	srv := &http.Server{Handler: h, ConnState: l.ConnState, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l, ln.Addr().String()
}

type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{Conn: c, r: bufio.NewReader(c)}
}

// get sends one keep-alive request and reads the whole answer.
func (c *conn) get(path string) (int, string, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// closedByServer waits (under the liveness guard) for the server to close c.
func (c *conn) closedByServer(t *testing.T) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.r.ReadByte()
	return err == io.EOF
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })

func TestLimiterEvictsOldestIdle(t *testing.T) {
	l, addr := serve(t, 3, hello)
	idle := make([]*conn, 3)
	for i := range idle {
		idle[i] = dial(t, addr)
		if status, _, err := idle[i].get("/"); err != nil || status != 200 {
			t.Fatalf("conn %d: %d %v", i, status, err)
		}
	}
	fresh := dial(t, addr)
	if status, body, err := fresh.get("/"); err != nil || status != 200 || body != "hello" {
		t.Fatalf("fresh client at the cap: %d %q %v", status, body, err)
	}
	if !idle[0].closedByServer(t) {
		t.Fatal("the oldest idle connection was not closed to make room")
	}
	// The others were not touched and still work.
	for i := 1; i < 3; i++ {
		if status, _, err := idle[i].get("/"); err != nil || status != 200 {
			t.Fatalf("conn %d after the eviction: %d %v", i, status, err)
		}
	}
	if l.Open() > 3 || l.Evicted() != 1 {
		t.Fatalf("open %d, evicted %d", l.Open(), l.Evicted())
	}
}

// TestLimiterEvictsSilentConnections: a connection that never sends a byte holds no request and
// gives way like an idle one.
func TestLimiterEvictsSilentConnections(t *testing.T) {
	_, addr := serve(t, 2, hello)
	silent := []*conn{dial(t, addr), dial(t, addr)}
	fresh := dial(t, addr)
	if status, _, err := fresh.get("/"); err != nil || status != 200 {
		t.Fatalf("fresh client behind silent connections: %d %v", status, err)
	}
	if !silent[0].closedByServer(t) {
		t.Fatal("the oldest silent connection was not closed")
	}
}

// TestLimiterNeverCutsARequest: at the cap with every connection mid-request, a new client waits
// for one to finish; nothing in progress is closed.
func TestLimiterNeverCutsARequest(t *testing.T) {
	entered := make(chan struct{}, 3)
	release := make(chan struct{})
	l, addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "done")
	}))
	ctx := liveness(t)
	type answer struct {
		status int
		err    error
	}
	answers := make(chan answer, 3)
	ask := func() {
		c := dial(t, addr)
		status, _, err := c.get("/")
		answers <- answer{status, err}
	}
	go ask()
	go ask()
	for range 2 {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("requests did not start")
		}
	}
	go ask()
	// A negative check has to wait for something: give the third client time it would need to
	// be served if the cap were not held.
	select {
	case <-entered:
		t.Fatal("a third request was served while two held the cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	if l.Evicted() != 0 {
		t.Fatal("a connection mid-request was evicted")
	}
	close(release)
	for range 3 {
		select {
		case a := <-answers:
			if a.err != nil || a.status != 200 {
				t.Fatalf("answer %d %v: a request in progress was cut", a.status, a.err)
			}
		case <-ctx.Done():
			t.Fatal("not every client was answered")
		}
	}
}

func TestLimiterCloseWakesAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimiter(ln, 1, nil)
	first, _ := net.Dial("tcp", ln.Addr().String())
	defer first.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	l.ConnState(c, http.StateActive) // busy: the next Accept must wait
	second, _ := net.Dial("tcp", ln.Addr().String())
	defer second.Close()
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-liveness(t).Done():
		t.Fatal("Close did not wake a waiting Accept")
	}
}

func TestDefaultMaxConnections(t *testing.T) {
	limit, ok := OpenFileLimit()
	got := DefaultMaxConnections()
	if got < 64 || (ok && limit < 1<<30 && uint64(2*got+reservedDescriptors) > max(limit, 2*64+reservedDescriptors)) {
		t.Fatalf("default cap %d with an open-file limit of %d (%v)", got, limit, ok)
	}
	t.Logf("open-file limit %d: default connection cap %d", limit, got)
}
