package paywall

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// responseBuffer holds a handler's response until the payment is charged.
type responseBuffer struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool
}

func newResponseBuffer(limit int64) *responseBuffer {
	return &responseBuffer{header: make(http.Header), limit: limit}
}

func (b *responseBuffer) Header() http.Header { return b.header }

func (b *responseBuffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if int64(b.body.Len())+int64(len(p)) > b.limit {
		b.overflow = true
		return 0, fmt.Errorf("paywall: response exceeds %d bytes", b.limit)
	}
	return b.body.Write(p)
}

// Flush is accepted and ignored: nothing leaves before the payment is charged.
func (b *responseBuffer) Flush() {}

func (b *responseBuffer) flushTo(w http.ResponseWriter) {
	dst := w.Header()
	for k, v := range b.header {
		dst[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	dst.Set("Content-Length", strconv.Itoa(b.body.Len()))
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// runHandler runs next and turns a panic into an error, so that a reserved payment is released
// rather than left dangling. The panic value is kept so that http.ErrAbortHandler, net/http's own
// signal to drop the connection, can be re-raised once the payment is released.
func runHandler(next http.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &handlerPanic{value: v}
		}
	}()
	next.ServeHTTP(w, r)
	return nil
}

type handlerPanic struct{ value any }

func (p *handlerPanic) Error() string { return fmt.Sprintf("panic: %v", p.value) }
