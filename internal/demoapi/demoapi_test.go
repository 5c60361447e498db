package demoapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRoutes(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(Handler(func() time.Time { return at }))
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/v1/quote", nil)
	req.Header.Set("X-Payper-Payer", "0xabc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var quote map[string]string
	json.NewDecoder(resp.Body).Decode(&quote)
	resp.Body.Close()
	if quote["payer"] != "0xabc" || quote["time"] != "2026-11-21T12:00:00Z" || quote["symbol"] != "PAYPER" {
		t.Fatalf("quote %v", quote)
	}

	resp, err = http.Get(srv.URL + "/v1/ticks?n=3&every=1ms")
	if err != nil {
		t.Fatal(err)
	}
	ticks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || strings.Count(string(ticks), "data: ") != 3 ||
		!strings.Contains(string(ticks), `"seq":2`) {
		t.Fatalf("ticks %q %v", ticks, resp.Header)
	}

	resp, err = http.Post(srv.URL+"/v1/echo", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"a":1}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("echo %q %v", body, resp.Header)
	}

	resp, _ = http.Get(srv.URL + "/v1/health")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health %d", resp.StatusCode)
	}
	resp, _ = http.Post(srv.URL+"/v1/quote", "text/plain", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/quote: %d", resp.StatusCode)
	}
	for _, r := range Routes {
		if r.Method == "" || !strings.HasPrefix(r.Path, "/v1/") {
			t.Fatalf("route %+v", r)
		}
	}
}
