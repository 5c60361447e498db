package app

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payper/payper/config"
	"github.com/payper/payper/x402"
)

// streamUpstream serves the streams the streaming tests pay for:
//
//	/s/events?n=5&every=200ms   Server-Sent Events: one event at once, then one every interval
//	/s/large?mib=40             a body of that many MiB, sent in 64 KiB writes, no Content-Length
//	/s/status?code=500          that status, with a small body
//	/free/events                /s/events on a path no route prices
//
// It records when it flushed each event, so a test can tell how long each took to arrive.
type streamUpstream struct {
	server *httptest.Server
	mu     sync.Mutex
	sent   map[string][]time.Time // stream id (the request's X-Stream-Id) -> flush time of each event
}

func newStreamUpstream(t *testing.T) *streamUpstream {
	u := &streamUpstream{sent: map[string][]time.Time{}}
	u.server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.server.Close)
	return u
}

func (u *streamUpstream) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case strings.HasSuffix(r.URL.Path, "/events"):
		n, _ := strconv.Atoi(q.Get("n"))
		every, _ := time.ParseDuration(q.Get("every"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		for i := 0; i < n; i++ {
			if i > 0 {
				time.Sleep(every)
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			w.(http.Flusher).Flush()
			u.mu.Lock()
			id := r.Header.Get("X-Stream-Id")
			u.sent[id] = append(u.sent[id], time.Now())
			u.mu.Unlock()
		}
	case strings.HasSuffix(r.URL.Path, "/large"):
		mib, _ := strconv.Atoi(q.Get("mib"))
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := make([]byte, 64<<10)
		for i := 0; i < mib*16; i++ {
			copy(chunk, fmt.Sprintf("%08d", i))
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case strings.HasSuffix(r.URL.Path, "/status"):
		code, _ := strconv.Atoi(q.Get("code"))
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	default:
		http.NotFound(w, r)
	}
}

// sentTimes returns when the upstream flushed each event of stream id.
func (u *streamUpstream) sentTimes(id string) []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.sent[id]...)
}

// streamRoutes prices /s/** at 1000 atomic units, for every settlement flow the test sets.
func streamRoutes(c *config.Config, upstream string) {
	c.Upstream = upstream
	c.Routes = append(c.Routes, config.Route{Method: "*", Path: "/s/**", Price: "1000", Description: "streams"})
}

// streamRun is what a client saw of one event stream.
type streamRun struct {
	status     int
	settlement *x402.SettlementResponse
	body       string
	started    time.Time
	arrived    []time.Time // when each event was read
	sent       []time.Time // when the upstream flushed each event
}

// readEvents requests an event stream, with a payment header when one is given, and reads it
// event by event, noting when each arrived.
func readEvents(t *testing.T, u *streamUpstream, url, payment string) streamRun {
	t.Helper()
	id := rand.Text()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Stream-Id", id)
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	run := streamRun{started: time.Now()}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	run.status = resp.StatusCode
	if h := resp.Header.Get(x402.HeaderPaymentResponse); h != "" {
		if run.settlement, err = x402.DecodeSettlementResponse(h, 0); err != nil {
			t.Fatal(err)
		}
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		run.body = string(b)
		return run
	}
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "data: ") {
			run.arrived = append(run.arrived, time.Now())
			run.body += line
		}
	}
	run.sent = u.sentTimes(id)
	return run
}

// firstEvent is how long after the request the first event arrived.
func (r streamRun) firstEvent() time.Duration { return r.arrived[0].Sub(r.started) }

// checkEventByEvent fails unless every event arrived, and each one the upstream sent after the
// stream began reaching the client arrived within lag of being sent, instead of all at the end.
func checkEventByEvent(t *testing.T, name string, r streamRun, n int, lag time.Duration) {
	t.Helper()
	if r.status != http.StatusOK || len(r.arrived) != n || len(r.sent) != n {
		t.Fatalf("%s: status %d, %d events arrived, %d sent: %s", name, r.status, len(r.arrived), len(r.sent), r.body)
	}
	streamed := 0
	for i := range n {
		if r.sent[i].Before(r.arrived[0]) {
			continue // produced while the payment settled: it waited for the first byte
		}
		streamed++
		if late := r.arrived[i].Sub(r.sent[i]); late > lag {
			t.Fatalf("%s: event %d arrived %s after the upstream sent it; a stream must pass each event on as it comes", name, i, late)
		}
	}
	if streamed < 2 {
		t.Fatalf("%s: only %d events were sent after the first arrived (first after %s): the stream arrived all at once", name, streamed, r.firstEvent())
	}
}
