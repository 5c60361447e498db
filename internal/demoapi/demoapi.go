// Package demoapi is the small API that `payper dev` sells through the gateway when no upstream
// is given: a priced quote, a priced echo, a priced stream of quotes (Server-Sent Events) and a
// free health check. It knows nothing about
// payments; the gateway in front of it does.
package demoapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Route is a demo route and the price the dev gateway puts on it ("" = free).
type Route struct {
	Method, Path, Price, Description string
}

// Routes lists the demo API's routes.
var Routes = []Route{
	{Method: "GET", Path: "/v1/quote", Price: "$0.001", Description: "A price quote"},
	{Method: "POST", Path: "/v1/echo", Price: "$0.002", Description: "Echoes the request body"},
	{Method: "GET", Path: "/v1/ticks", Price: "$0.001", Description: "A stream of quotes (Server-Sent Events)"},
	{Method: "GET", Path: "/v1/health", Description: "Health check (free)"},
}

// Handler returns the demo API. now stamps the quotes.
func Handler(now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/quote", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"symbol": "PAYPER", "bid": "1.0000", "ask": "1.0002",
			"time":  now().UTC().Format(time.RFC3339Nano),
			"payer": r.Header.Get("X-Payper-Payer"),
		})
	})
	mux.HandleFunc("POST /v1/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		_, _ = io.Copy(w, io.LimitReader(r.Body, 1<<20))
	})
	mux.HandleFunc("GET /v1/ticks", func(w http.ResponseWriter, r *http.Request) { ticks(w, r, now) })
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	return mux
}

// Bounds of a ticks stream: ?n= events (default 5), ?every= between them (default 1s).
const (
	maxTicks     = 100
	maxTickEvery = 10 * time.Second
)

// ticks streams n quotes as Server-Sent Events, the first at once, then one every interval.
func ticks(w http.ResponseWriter, r *http.Request, now func() time.Time) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n <= 0 {
		n = 5
	}
	every, err := time.ParseDuration(r.URL.Query().Get("every"))
	if err != nil || every < 0 {
		every = time.Second
	}
	n, every = min(n, maxTicks), min(every, maxTickEvery)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for i := range n {
		if i > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(every):
			}
		}
		data, _ := json.Marshal(map[string]any{"seq": i, "symbol": "PAYPER", "bid": "1.0000", "ask": "1.0002",
			"time": now().UTC().Format(time.RFC3339Nano)})
		fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, data)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
