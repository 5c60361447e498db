// Package demoapi is the small API that `payper dev` sells through the gateway when no upstream
// is given: a priced quote, a priced echo and a free health check. It knows nothing about
// payments; the gateway in front of it does.
package demoapi

import (
	"encoding/json"
	"io"
	"net/http"
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
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
