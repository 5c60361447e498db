package httpguard

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limiter is a net.Listener that keeps at most Max connections open. Connections are followed
// through the server's ConnState hook: when a new client arrives at the cap, the connection that
// has waited longest without a request in progress (an idle keep-alive connection, or one that
// has not sent a byte yet) is closed to make room. Connections in the middle of a request are
// never closed; when every connection is busy, Accept waits for one to finish or go idle, and
// the new client waits in the kernel's accept queue meanwhile.
//
// Closing an idle connection races, as any idle timeout does, with a client that starts a new
// request on it at that instant; HTTP clients retry such requests on a fresh connection.
type Limiter struct {
	net.Listener
	max int
	log *slog.Logger

	mu      sync.Mutex
	changed *sync.Cond
	conns   map[net.Conn]*tracked
	waiting list.List // *tracked without a request in progress, longest waiting first
	closed  bool
	evicted int64
	warned  time.Time
}

type tracked struct {
	conn net.Conn
	elem *list.Element // in waiting, nil while a request is in progress
}

// NewLimiter wraps ln. The server must install ConnState as its ConnState hook (chaining any
// other), or the limiter never learns when connections close.
func NewLimiter(ln net.Listener, max int, log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{Listener: ln, max: max, log: log, conns: make(map[net.Conn]*tracked)}
	l.changed = sync.NewCond(&l.mu)
	return l
}

// ErrLimiterClosed is returned by Accept once Close was called.
var ErrLimiterClosed = errors.New("httpguard: listener closed")

// Accept accepts the next connection, first making room for it under the cap.
func (l *Limiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	var victims []net.Conn
	l.mu.Lock()
	for len(l.conns) >= l.max && !l.closed {
		if v := l.evictLocked(); v != nil {
			victims = append(victims, v)
			continue
		}
		l.changed.Wait()
	}
	closed := l.closed
	if !closed {
		t := &tracked{conn: c}
		t.elem = l.waiting.PushBack(t)
		l.conns[c] = t
	}
	l.mu.Unlock()
	for _, v := range victims {
		_ = v.Close()
	}
	if closed {
		_ = c.Close()
		return nil, ErrLimiterClosed
	}
	return c, nil
}

// evictLocked forgets the connection that has waited longest without a request and returns it
// for closing, or returns nil when every connection is busy.
func (l *Limiter) evictLocked() net.Conn {
	front := l.waiting.Front()
	if front == nil {
		return nil
	}
	t := front.Value.(*tracked)
	l.waiting.Remove(front)
	delete(l.conns, t.conn)
	l.evicted++
	if now := time.Now(); now.Sub(l.warned) >= 10*time.Second {
		l.warned = now
		l.log.Warn("connection cap reached; closing idle connections to admit new clients",
			"max_connections", l.max, "evicted_so_far", l.evicted)
	}
	return t.conn
}

// ConnState follows each connection's state; install it as http.Server.ConnState.
func (l *Limiter) ConnState(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.conns[c]
	if !ok {
		return // evicted already, or not ours
	}
	switch state {
	case http.StateActive:
		if t.elem != nil {
			l.waiting.Remove(t.elem)
			t.elem = nil
		}
	case http.StateIdle:
		if t.elem == nil {
			t.elem = l.waiting.PushBack(t)
			l.changed.Broadcast()
		}
	case http.StateClosed, http.StateHijacked:
		if t.elem != nil {
			l.waiting.Remove(t.elem)
		}
		delete(l.conns, c)
		l.changed.Broadcast()
	}
}

// Close closes the listener and wakes an Accept waiting for room.
func (l *Limiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.changed.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// Open is how many connections are open under the cap.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Evicted is how many idle connections were closed to make room.
func (l *Limiter) Evicted() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evicted
}

var _ net.Listener = (*Limiter)(nil)

// Descriptors the gateway needs besides its clients' connections: the upstream's idle pool, the
// database, the chain RPC, logs.
const reservedDescriptors = 1280

// DefaultMaxConnections is the connection cap to use when none is configured: half of what the
// open-file limit leaves after the reserve, since every client connection in progress may need
// an upstream connection too; 4096 when the limit is unknown, never below 64.
func DefaultMaxConnections() int {
	limit, ok := OpenFileLimit()
	if !ok || limit > 1<<30 {
		return 4096
	}
	if limit <= reservedDescriptors+128 {
		return 64
	}
	return max(64, int(limit-reservedDescriptors)/2)
}
