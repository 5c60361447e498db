package httpguard

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Deadlines bound a request's I/O with the client by its progress rather than by a fixed total,
// so that a large upload at a reasonable pace and a long event stream that keeps sending both
// live on, while a client that stalls is cut.
type Deadlines struct {
	// BodyIdle bounds each wait for more of the request body, and is also the grace period
	// before MinBodyRate applies. Zero sets no read deadline at all.
	BodyIdle time.Duration
	// MinBodyRate, in bytes per second, is the average pace a request body must keep after
	// BodyIdle; time the server spends not reading (the upstream busy) is not held against the
	// client. A body dribbled a byte at a time can then not hold a connection for long. Zero
	// leaves only BodyIdle.
	MinBodyRate int64
	// Write bounds each write to the client: every write and flush moves the deadline forward,
	// so only a client that stops reading (its socket buffer full) is cut. Zero sets no write
	// deadline.
	Write time.Duration
}

// Wrap returns next with the deadlines applied to each request.
func (d Deadlines) Wrap(next http.Handler) http.Handler {
	if d.BodyIdle <= 0 && d.Write <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if d.Write > 0 {
			gw := &guardedWriter{ResponseWriter: w, rc: rc, timeout: d.Write}
			// net/http writes the end of the response after next returns, maybe long after
			// the last write (a stream that paused, then ended): that write gets a deadline
			// of its own. net/http clears the deadline once the response is done, and on
			// Hijack.
			defer gw.extend()
			w = gw
		}
		if d.BodyIdle > 0 && r.Body != nil && r.Body != http.NoBody {
			// Until the handler reads the body this bounds net/http's own reading of it: the
			// rest it discards before answering a handler that left the body unread (a 402).
			// Each read of the handler's sets a deadline of its own.
			_ = rc.SetReadDeadline(time.Now().Add(d.BodyIdle))
			// A copy of the request carries the guarded body, so that net/http still sees its
			// own body and judges it as usual (how much is left, whether to discard it).
			r = r.WithContext(r.Context())
			r.Body = &guardedBody{ReadCloser: r.Body, rc: rc, idle: d.BodyIdle, rate: d.MinBodyRate}
		}
		next.ServeHTTP(w, r)
	})
}

// guardedBody sets the connection's read deadline before each read of the request body.
type guardedBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	idle   time.Duration
	rate   int64
	read   int64
	waited time.Duration // time spent blocked in Read, the only time the client is charged for
	done   bool
}

// ErrBodyTooSlow is returned by a request body that fell below the minimum rate; it matches
// os.ErrDeadlineExceeded like a read deadline does.
var ErrBodyTooSlow = errors.New("request body arrives too slowly")

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	allow := b.idle
	if b.rate > 0 {
		earned := b.idle + time.Duration(float64(b.read)/float64(b.rate)*float64(time.Second)) - b.waited
		if earned <= 0 {
			return 0, errors.Join(ErrBodyTooSlow, os.ErrDeadlineExceeded)
		}
		allow = min(allow, earned)
	}
	start := time.Now()
	_ = b.rc.SetReadDeadline(start.Add(allow))
	n, err := b.ReadCloser.Read(p)
	b.waited += time.Since(start)
	b.read += int64(n)
	if err != nil {
		// At the end of the body net/http clears the deadline and starts a background read to
		// notice the client leaving; a deadline set after that would fire there and cancel
		// the request, so none is set again.
		b.done = true
	}
	return n, err
}

// guardedWriter moves the write deadline forward before each write and flush. It re-arms only
// once an eighth of the timeout has passed since the last time, to keep a fast stream cheap.
type guardedWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	armed   time.Time
}

func (g *guardedWriter) extend() {
	now := time.Now()
	if now.Sub(g.armed) < g.timeout/8 {
		return
	}
	g.armed = now
	_ = g.rc.SetWriteDeadline(now.Add(g.timeout))
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.extend()
	return g.ResponseWriter.Write(p)
}

// FlushError is what http.ResponseController.Flush calls.
func (g *guardedWriter) FlushError() error {
	g.extend()
	return g.rc.Flush()
}

// Flush serves callers that use the http.Flusher interface.
func (g *guardedWriter) Flush() { _ = g.FlushError() }

// Unwrap lets http.ResponseController reach the connection for everything else (Hijack,
// EnableFullDuplex, read deadlines).
func (g *guardedWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }
