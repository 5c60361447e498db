package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// liveness bounds a streaming test so a proxy that buffers fails instead of
// hanging. It is a deadlock guard, not a performance limit.
func liveness(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestResponseStreaming(t *testing.T) {
	for _, contentType := range []string{"text/event-stream", "application/octet-stream"} {
		t.Run(contentType, func(t *testing.T) {
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				_, _ = io.WriteString(w, "data: first\n\n")
				_ = http.NewResponseController(w).Flush()
				<-release // the rest waits until the client has seen the first event
				_, _ = io.WriteString(w, "data: second\n\n")
			}))
			defer up.Close()
			defer close(release)
			gw := gateway(t, up.URL, Options{})
			req, _ := http.NewRequestWithContext(liveness(t), "GET", gw.URL+"/events", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: first\n" {
				t.Fatalf("first line %q, %v: the proxy held the stream back", line, err)
			}
		})
	}
}

// TestFullDuplex streams a request body and the response at the same time:
// each line the client sends is answered before it sends the next.
func TestFullDuplex(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		scanner := bufio.NewScanner(r.Body)
		for scanner.Scan() {
			_, _ = io.WriteString(w, "echo: "+scanner.Text()+"\n")
			_ = rc.Flush()
		}
	}))
	defer up.Close()
	gw := gateway(t, up.URL, Options{})
	pr, pw := io.Pipe()
	ctx := liveness(t)
	// The transport waits for the body writer even after a cancel, so the
	// guard must also end the body.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	defer stop()
	req, _ := http.NewRequestWithContext(ctx, "POST", gw.URL+"/chat", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	replies := bufio.NewReader(resp.Body)
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := io.WriteString(pw, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		got, err := replies.ReadString('\n')
		if err != nil || got != "echo: "+msg+"\n" {
			t.Fatalf("reply %q, %v; want an echo of %q", got, err, msg)
		}
	}
	_ = pw.Close()
	if rest, err := io.ReadAll(replies); err != nil || len(rest) != 0 {
		t.Fatalf("after close: %q, %v", rest, err)
	}
}
