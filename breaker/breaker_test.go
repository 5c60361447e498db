package breaker

import (
	"errors"
	"testing"
	"time"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func call(t *testing.T, b *Breaker, ok bool) {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow refused in state %s: %v", b.State(), err)
	}
	done(ok)
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	clk := &clock{now: time.Unix(1000, 0)}
	var changes []string
	b := New(Options{Name: "upstream", Failures: 3, OpenFor: 10 * time.Second, MaxOpenFor: 30 * time.Second, Now: clk.Now,
		OnChange: func(from, to State) { changes = append(changes, from.String()+"→"+to.String()) }})

	call(t, b, false)
	call(t, b, false)
	call(t, b, true) // a success resets the run
	call(t, b, false)
	call(t, b, false)
	if b.State() != Closed {
		t.Fatalf("state %s after two failures in a row, want closed", b.State())
	}
	call(t, b, false)
	if b.State() != Open {
		t.Fatalf("state %s after three failures in a row, want open", b.State())
	}
	_, err := b.Allow()
	var open *OpenError
	if !errors.Is(err, ErrOpen) || !errors.As(err, &open) || open.RetryAfter() != 10*time.Second {
		t.Fatalf("Allow while open: %v, want ErrOpen with 10s", err)
	}
	if wait, refusing := b.Refusing(); !refusing || wait != 10*time.Second {
		t.Fatalf("Refusing = %v %v, want 10s true", wait, refusing)
	}

	clk.advance(10 * time.Second)
	if _, refusing := b.Refusing(); refusing {
		t.Fatal("a probe is due: Refusing must let it through")
	}
	probe, err := b.Allow()
	if err != nil || b.State() != HalfOpen {
		t.Fatalf("after the cool-down: %v, state %s; want a probe, half-open", err, b.State())
	}
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatal("only one probe may be in flight")
	}
	probe(false) // the probe failed: open again, for twice as long
	if b.State() != Open {
		t.Fatalf("state %s after a failed probe, want open", b.State())
	}
	clk.advance(19 * time.Second)
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatal("the second cool-down must be 20s")
	}
	clk.advance(time.Second)
	call(t, b, true)
	if b.State() != Closed {
		t.Fatalf("state %s after a good probe, want closed", b.State())
	}
	want := []string{"closed→open", "open→half-open", "half-open→open", "open→half-open", "half-open→closed"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
	// Closed again: the cool-down is back to its first length.
	for range 3 {
		call(t, b, false)
	}
	if wait, _ := b.Refusing(); wait != 10*time.Second {
		t.Fatalf("cool-down %v after closing, want the first 10s", wait)
	}
}

func TestBreakerDoneCountsOnce(t *testing.T) {
	b := New(Options{Failures: 2})
	done, _ := b.Allow()
	done(false)
	done(false)
	if b.State() != Closed {
		t.Fatal("one call's outcome reported twice must count once")
	}
}

func TestOutcomesCountInTheStateTheyArriveIn(t *testing.T) {
	clk := &clock{now: time.Unix(0, 0)}
	b := New(Options{Failures: 1, OpenFor: time.Second, Now: clk.Now})
	slow, _ := b.Allow() // a call let through while closed, still running
	call(t, b, false)    // opens
	clk.advance(time.Second)
	call(t, b, true) // probe closes
	slow(false)      // the old call's failure is one failure, in the closed state
	if b.State() != Open {
		t.Fatalf("state %s: with Failures 1, a failure while closed opens", b.State())
	}
}
