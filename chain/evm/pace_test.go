package evm

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// simChain is a chain on a simulated clock: the blocks it has at each moment.
type simChain struct {
	arrivals []time.Duration // when block i+1 arrives, from the start
}

func (c *simChain) head(at time.Duration) uint64 {
	n, _ := slices.BinarySearch(c.arrivals, at+1)
	return uint64(n)
}

// scheduled is a chain making a block every period from phase on, each late by up to jitter.
func scheduled(period, phase, jitter time.Duration, blocks int) *simChain {
	r := rand.New(rand.NewPCG(1, 2))
	c := &simChain{}
	for i := range blocks {
		c.arrivals = append(c.arrivals, phase+time.Duration(i)*period+time.Duration(r.Int64N(int64(jitter)+1)))
	}
	return c
}

// paceRun is what a simulated poller did.
type paceRun struct {
	polls   int
	lags    []time.Duration // from each block's arrival until a poll saw it (or a later one)
	pollsAt []int           // polls made when each block was seen
}

// simulate runs a pacer against chain for d of simulated time, with kicks (transactions sent) at
// the given moments.
func simulate(p *headPacer, chain *simChain, d time.Duration, kicks []time.Duration) paceRun {
	base := time.Unix(1_700_000_000, 0)
	var run paceRun
	now := time.Duration(0)
	before := chain.head(0)
	poll := func() {
		run.polls++
		h := chain.head(now)
		p.observe(h, base.Add(now))
		for n := before + 1; n <= h; n++ {
			run.lags = append(run.lags, now-chain.arrivals[n-1])
			run.pollsAt = append(run.pollsAt, run.polls)
		}
		before = max(before, h)
	}
	poll()
	for now < d {
		at := now + p.next(base.Add(now))
		if len(kicks) > 0 && kicks[0] <= at {
			now = max(now, kicks[0])
			kicks = kicks[1:]
			p.kick(base.Add(now))
			continue
		}
		now = at
		poll()
	}
	return run
}

func (r paceRun) worst(skip int) time.Duration {
	if len(r.lags) <= skip {
		return 0
	}
	return slices.Max(r.lags[skip:])
}

// TestPacerOnAScheduledChain: on a chain with 2 s blocks (jittered by up to 50 ms), each block is
// seen within a tenth of the block time, with about two polls a block, whether the block time
// was measured from timestamps at the start or has to be learnt by watching.
func TestPacerOnAScheduledChain(t *testing.T) {
	const period = 2 * time.Second
	chain := scheduled(period, 700*time.Millisecond, 50*time.Millisecond, 100)
	for _, tt := range []struct {
		name string
		seed time.Duration // the block time timestamps gave, if any
		skip int           // blocks before the schedule is known
	}{
		{"seeded from timestamps", period, 0},
		{"learnt from arrivals", 0, 4},
		{"seeded too long", 3 * time.Second, 10},
		{"seeded too short", time.Second, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &headPacer{}
			if tt.seed != 0 {
				p.seed(tt.seed, true)
			}
			run := simulate(p, chain, 150*time.Second, nil)
			blocks := len(run.lags) - tt.skip
			polls := run.polls - run.pollsAt[tt.skip]
			t.Logf("%d blocks, %d polls, worst lag %v (after the first %d blocks, which took %d polls), block time %v",
				blocks, polls, run.worst(tt.skip), tt.skip, run.pollsAt[tt.skip], p.interval)
			if w := run.worst(tt.skip); w > period/10 {
				t.Errorf("a block was seen %v after it arrived, more than a tenth of the block time", w)
			}
			if perBlock := float64(polls) / float64(blocks); perBlock > 3 {
				t.Errorf("%.1f polls a block, want at most 3", perBlock)
			}
		})
	}
}

// TestPacerKeepsToTheScheduleUnderLoad: on a chain whose schedule it has timed, transactions
// sent every 50 ms cost no extra polls.
func TestPacerKeepsToTheScheduleUnderLoad(t *testing.T) {
	const period = 2 * time.Second
	chain := scheduled(period, 700*time.Millisecond, 50*time.Millisecond, 100)
	var sends []time.Duration
	for at := 30 * time.Second; at < 150*time.Second; at += 50 * time.Millisecond {
		sends = append(sends, at)
	}
	p := &headPacer{}
	p.seed(period, true)
	run := simulate(p, chain, 150*time.Second, sends)
	const skip = 14 // the blocks before the sends start
	blocks, polls := len(run.lags)-skip, run.polls-run.pollsAt[skip]
	t.Logf("%d blocks, %d polls while %d transactions were sent, worst lag %v", blocks, polls, len(sends), run.worst(skip))
	if perBlock := float64(polls) / float64(blocks); perBlock > 3 {
		t.Errorf("%.1f polls a block under load, want at most 3", perBlock)
	}
	if w := run.worst(skip); w > period/10 {
		t.Errorf("a block was seen %v after it arrived", w)
	}
}

// TestPacerOnAChainThatMinesOnDemand: blocks come only after transactions, a few milliseconds
// after each; every one is seen within a few tens of milliseconds, even when timestamps made the
// chain look scheduled at the start.
func TestPacerOnAChainThatMinesOnDemand(t *testing.T) {
	sends := []time.Duration{300 * time.Millisecond, 4100 * time.Millisecond, 4700 * time.Millisecond, 11 * time.Second, 30 * time.Second, 31 * time.Second}
	chain := &simChain{}
	for _, s := range sends {
		chain.arrivals = append(chain.arrivals, s+5*time.Millisecond)
	}
	for _, seeded := range []bool{false, true} {
		p := &headPacer{}
		if seeded {
			p.seed(5*time.Second, true) // the last blocks happened to come every 5 s
		}
		run := simulate(p, chain, 40*time.Second, sends)
		t.Logf("seeded %v: lags %v, %d polls in 40 s", seeded, run.lags, run.polls)
		if len(run.lags) != len(sends) {
			t.Fatalf("%d blocks seen, want %d", len(run.lags), len(sends))
		}
		if w := run.worst(0); w > 3*probeFloor {
			t.Errorf("seeded %v: a block was seen %v after it was mined", seeded, w)
		}
	}
}

// TestPacerBacksOffWhenNothingComes: with no block and no transaction for a long while (a stalled
// chain), polls slow down to one a second.
func TestPacerBacksOffWhenNothingComes(t *testing.T) {
	p := &headPacer{}
	p.seed(2*time.Second, true)
	run := simulate(p, &simChain{}, time.Minute, nil)
	// At most a step's polls for the three block times, probing for the stall's first seconds,
	// then one a second.
	if limit := 6*stepsPerBlock + int(probeStall/probeStep) + 60; run.polls > limit {
		t.Errorf("%d polls in a minute without blocks, want at most %d", run.polls, limit)
	}
	if d := p.next(p.lastPoll); d != probeCeiling {
		t.Errorf("pause %v after a minute without blocks, want %v", d, probeCeiling)
	}
}

func TestSeedFromTimestamps(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	at := func(gaps ...uint64) []uint64 { // newest first, the newest a second ago
		times := []uint64{uint64(now.Unix()) - 1}
		for _, g := range gaps {
			times = append(times, times[len(times)-1]-g)
		}
		return times
	}
	tests := []struct {
		name         string
		times        []uint64
		wantInterval time.Duration
		wantPeriodic bool
	}{
		{"two-second chain", at(2, 2, 2, 2, 2, 2, 2, 2), 2 * time.Second, true},
		{"twelve-second chain with a missed slot", at(12, 24, 12, 12, 12, 12, 12, 12), 12 * time.Second, true},
		{"one-second timestamps of a faster chain", at(1, 0, 1, 1, 0, 1, 1, 0), time.Second, true},
		{"dev chain mining on demand", at(1, 1, 30, 7, 1, 120, 2, 1), 2 * time.Second, false},
		{"many blocks in one second", at(0, 0, 0, 0, 1, 0, 0, 0), 0, false},
		{"idle for a while", []uint64{uint64(now.Unix()) - 60, uint64(now.Unix()) - 62, uint64(now.Unix()) - 64}, 2 * time.Second, false},
		{"too few blocks", at(2), 0, false},
		{"slower than a minute", at(90, 90, 90), 0, false},
	}
	for _, tt := range tests {
		interval, periodic := seedFromTimestamps(tt.times, now)
		if interval != tt.wantInterval || periodic != tt.wantPeriodic {
			t.Errorf("%s: got %v %v, want %v %v", tt.name, interval, periodic, tt.wantInterval, tt.wantPeriodic)
		}
	}
}
