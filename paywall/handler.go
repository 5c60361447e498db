package paywall

import (
	"fmt"
	"net/http"
)

// runHandler runs next and turns a panic into an error, so that a reserved payment is released
// rather than left dangling. The panic value is kept so that http.ErrAbortHandler, net/http's own
// signal to drop the connection, can be told apart from a handler's bug.
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
