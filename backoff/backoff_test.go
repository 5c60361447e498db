package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayGrowsWithinJitterBounds(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 0.999} {
		p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: func() float64 { return jitter }}
		want := []time.Duration{100, 200, 400, 800, 1000, 1000}
		for i, base := range want {
			base *= time.Millisecond
			got := p.Delay(i + 1)
			if got < base/2 || got >= base {
				t.Errorf("jitter %v: Delay(%d) = %v, want in [%v, %v)", jitter, i+1, got, base/2, base)
			}
		}
	}
}

type hinted struct{ d time.Duration }

func (h hinted) Error() string             { return "busy" }
func (h hinted) RetryAfter() time.Duration { return h.d }

func TestRetry(t *testing.T) {
	errBoom := errors.New("boom")
	var slept []time.Duration
	p := Policy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: 4,
		Jitter: func() float64 { return 0 },
		Sleep:  func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}

	calls := 0
	err := Retry(context.Background(), p, nil, func(context.Context) error { calls++; return errBoom })
	if !errors.Is(err, errBoom) || calls != 4 {
		t.Fatalf("gave up with %v after %d calls, want boom after 4", err, calls)
	}
	if want := []time.Duration{5, 10, 20}; len(slept) != 3 || slept[0] != want[0]*time.Millisecond || slept[2] != want[2]*time.Millisecond {
		t.Fatalf("waits %v, want 5ms 10ms 20ms", slept)
	}

	calls, slept = 0, nil
	err = Retry(context.Background(), p, nil, func(context.Context) error {
		calls++
		if calls < 3 {
			return errBoom
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("success on the third call: err %v, calls %d", err, calls)
	}

	calls = 0
	err = Retry(context.Background(), p, func(err error) bool { return !errors.Is(err, errBoom) },
		func(context.Context) error { calls++; return errBoom })
	if calls != 1 || !errors.Is(err, errBoom) {
		t.Fatalf("a non-retryable error must stop at once: calls %d, err %v", calls, err)
	}

	calls = 0
	err = Retry(context.Background(), p, nil, func(context.Context) error { calls++; return Permanent(errBoom) })
	if calls != 1 || err != errBoom {
		t.Fatalf("Permanent must stop at once and unwrap: calls %d, err %v", calls, err)
	}

	slept = nil
	_ = Retry(context.Background(), Policy{Attempts: 2, Max: time.Minute, Jitter: p.Jitter, Sleep: p.Sleep}, nil,
		func(context.Context) error { return hinted{3 * time.Second} })
	if len(slept) != 1 || slept[0] != 3*time.Second {
		t.Fatalf("a Retry-After hint must be honoured: waits %v", slept)
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Retry(ctx, Policy{Attempts: -1, Initial: time.Millisecond}, nil, func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return errors.New("down")
	})
	if !errors.Is(err, context.Canceled) || calls != 3 {
		t.Fatalf("err %v after %d calls, want context.Canceled after 3", err, calls)
	}
}
