package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/config"
)

// rawGet sends one keep-alive GET on conn and reads the whole answer, so that the connection is
// left idle without a client library's goroutines behind it.
func rawGet(conn net.Conn, r *bufio.Reader, path string) (int, error) {
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// TestFreshClientServedWhileManyIdleConnectionsAreHeld: 10,000 keep-alive connections that made
// one request each and went quiet must not keep a new client from being answered at once. The
// client sockets live in this process too, beside the gateway's; without a cap that closes idle
// connections the two sides together exhaust the 20,000 descriptors this machine allows a
// process, which is how the defect showed. The cap is set well below the default so that the
// sum stays under the limit with the fix, whatever the limit here.
func TestFreshClientServedWhileManyIdleConnectionsAreHeld(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	maxConns := heldConnections / 5
	gw, url := e.startGatewayFull(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Server.MaxConnections = maxConns
	})
	addr := strings.TrimPrefix(url, "http://")
	conns := make([]net.Conn, heldConnections)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	// A few clients open the connections side by side; each makes one request and leaves its
	// connection open and quiet.
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(conns); i += workers {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if status, err := rawGet(c, bufio.NewReader(c), "/v1/health"); err != nil || status != 200 {
					errs <- fmt.Errorf("request on connection %d: %d %v", i, status, err)
					return
				}
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	held := len(conns)
	t.Logf("%d idle keep-alive connections opened in %s", held, time.Since(start).Round(time.Millisecond))

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	asked := time.Now()
	resp, err := client.Get(url + "/v1/health")
	if err != nil {
		t.Fatalf("a fresh client is not answered while %d idle connections are held: %v", held, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("fresh client: status %d", resp.StatusCode)
	}
	t.Logf("fresh client answered in %s", time.Since(asked).Round(time.Microsecond))
	if open := gw.limiter.Load().Open(); open > maxConns {
		t.Fatalf("%d connections open, above the cap of %d", open, maxConns)
	}
}

// TestIdleConnectionClosedAfterIdleTimeout: a keep-alive connection that goes quiet is closed
// by the gateway once server.idleTimeout passes.
func TestIdleConnectionClosedAfterIdleTimeout(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	const idle = 300 * time.Millisecond
	_, url := e.startGatewayFull(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Server.IdleTimeout = idle
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if status, err := rawGet(c, r, "/v1/health"); err != nil || status != 200 {
		t.Fatalf("request: %d %v", status, err)
	}
	quiet := time.Now()
	// Liveness guard only: the server must close the connection long before it.
	c.SetReadDeadline(time.Now().Add(20 * idle))
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection still open after %s (read %d bytes, %v)", time.Since(quiet).Round(time.Millisecond), n, err)
	}
	if waited := time.Since(quiet); waited < idle {
		t.Fatalf("closed after %s, before the %s idle timeout", waited, idle)
	}
}

// TestSlowLorisBodyGets408: a request body dribbled in below server.minBodyRate is cut with 408
// once the grace period is over, and the upstream is not blamed for it: the breaker stays
// closed however many such clients come.
func TestSlowLorisBodyGets408(t *testing.T) {
	up := newCountingUpstream(t)
	e := startEnv(t, up.server.URL)
	const grace = 300 * time.Millisecond
	gw, url := e.startGatewayFull(func(c *config.Config) {
		c.Upstream = up.server.URL
		c.Server.BodyReadTimeout = grace
		c.Server.MinBodyRate = 1000
		c.UpstreamBreaker.Failures = 1
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /v1/echo-free HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 50 ms: each gap is short, the pace far below the floor
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(20 * grace)) // liveness guard
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow-loris body: %v %v, want 408", resp, err)
	}
	if took := time.Since(start); took < grace {
		t.Fatalf("cut after %s, before the %s grace", took, grace)
	}
	if s := gw.breaker.State(); s.String() != "closed" {
		t.Fatalf("a slow client opened the upstream breaker (%s)", s)
	}
}
