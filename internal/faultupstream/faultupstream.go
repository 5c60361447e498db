// Package faultupstream is an HTTP upstream for tests that misbehaves on request, the way a
// broken or overloaded API does: it hangs, resets the connection, answers an error status after
// a delay, streams slowly, or stalls in the middle of a body. The last path segment picks the
// behaviour and the query tunes it, so a gateway in front of it forwards the fault unchanged:
//
//	…/ok                               200 with a small JSON body
//	…/hang                             never answers (until the client leaves or the server closes)
//	…/reset                            closes the connection with a TCP reset, answering nothing
//	…/status?code=503&after=100ms      answers code (default 503) after the delay (default none)
//	…/slow?chunks=5&every=20ms         200, then chunks flushed one by one, every interval
//	…/stall?chunks=1                   200, then chunks flushed, then nothing more: the body hangs
//
// Any other path answers 404. It is for tests only.
package faultupstream

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a running fault-injecting upstream.
type Server struct {
	// URL is the server's base URL, "http://127.0.0.1:port".
	URL string

	srv     *httptest.Server
	calls   atomic.Int64
	closing chan struct{}
	once    sync.Once
	arrived chan string // paths of requests as they arrive, when someone listens
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{closing: make(chan struct{}), arrived: make(chan string, 1024)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Calls is how many requests reached the server.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Arrived delivers the path of each request as it reaches the server (buffered; requests beyond
// the buffer are not reported).
func (s *Server) Arrived() <-chan string { return s.arrived }

// Close releases every hanging request and stops the server.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// ChunkSize is the size of each chunk the streaming behaviours write.
const ChunkSize = 16

// Chunk is the i-th chunk the streaming behaviours write, i from 0.
func Chunk(i int) string { return fmt.Sprintf("chunk %09d\n", i%1_000_000_000) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	select {
	case s.arrived <- r.URL.Path:
	default:
	}
	q := r.URL.Query()
	switch path.Base(r.URL.Path) {
	case "ok":
		writeJSON(w, http.StatusOK, map[string]string{"path": r.URL.Path, "payer": r.Header.Get("X-Payper-Payer")})
	case "hang":
		s.wait(r, -1)
	case "reset":
		reset(w)
	case "status":
		code := intParam(q.Get("code"), http.StatusServiceUnavailable)
		if !s.wait(r, durationParam(q.Get("after"))) {
			return
		}
		writeJSON(w, code, map[string]string{"error": "upstream's own error"})
	case "slow":
		s.stream(w, r, intParam(q.Get("chunks"), 5), durationParam(q.Get("every")), false)
	case "stall":
		s.stream(w, r, intParam(q.Get("chunks"), 1), 0, true)
	default:
		http.NotFound(w, r)
	}
}

// wait waits d (forever when d < 0) and reports whether it ran out rather than the client
// leaving or the server closing.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, chunks int, every time.Duration, stall bool) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := range chunks {
		if i > 0 && !s.wait(r, every) {
			return
		}
		if _, err := w.Write([]byte(Chunk(i))); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if stall {
		s.wait(r, -1)
	}
}

// reset drops the connection with a TCP RST (linger 0) without writing anything.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot reset", http.StatusInternalServerError)
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func intParam(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func durationParam(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}
