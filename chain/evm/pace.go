package evm

import (
	"slices"
	"time"
)

// Pacing of the head poller (see headPacer).
const (
	// stepsPerBlock, stepFloor and stepCeiling set the pause between polls while a block is due:
	// a twentieth of the block time, so that a block is seen within 5 % of the block time after
	// it arrives, but never more than 20 polls a second (a sub-second chain is better followed
	// over a WebSocket subscription) and never fewer than 2.
	stepsPerBlock = 20
	stepFloor     = 50 * time.Millisecond
	stepCeiling   = 500 * time.Millisecond
	// probeFloor and probeStep bound the pause between polls on a chain that makes no block on
	// a schedule of its own (a dev chain that mines on demand), or before its schedule is known:
	// probeFloor after a transaction was sent or a waiter arrived (a dev chain mines it at once),
	// growing to probeStep. After probeStall without a new head the pause grows to probeCeiling.
	probeFloor   = 20 * time.Millisecond
	probeStep    = 100 * time.Millisecond
	probeStall   = 10 * time.Second
	probeCeiling = time.Second
	// seedBlocks is how many recent blocks' timestamps give the first measure of the block time.
	seedBlocks = 9
	// keptArrivals is how many precisely observed arrivals the block time is measured over, and
	// minArrivals how many it takes for them to overrule the timestamps.
	keptArrivals = 16
	minArrivals  = 4
	// maxBlockTime is the longest block time of a chain taken to make blocks on a schedule.
	maxBlockTime = time.Minute
)

// kickLooks are the looks after a transaction was sent, unless the chain's schedule is timed: a
// chain that mines on demand has the block within milliseconds (anvil mines a transfer in 2 to
// 5 ms on a busy machine), so the first looks come that soon.
var kickLooks = [...]time.Duration{2 * time.Millisecond, 5 * time.Millisecond, probeFloor, probeStep}

// arrival is a block seen arriving, at a time known within a poll step.
type arrival struct {
	number uint64
	at     time.Time
}

// headPacer decides when the head poller asks for the head next.
//
// On a chain that makes blocks on a schedule it sleeps until the next block is due (the last
// precisely seen arrival plus the block time for each block since), less a lead, then polls every
// step (a twentieth of the block time) until the block is there. The lead starts at one step
// and doubles whenever the first poll of a window already finds the block (it came earlier than
// predicted), shrinking back when windows open in time. The block time is first measured from
// the timestamps of recent blocks, then from the arrivals the poller sees within a step: over
// the last few of them, so that a poll's imprecision is spread over many blocks. The chain is
// on a schedule while those arrivals agree with the block time, each within half again.
//
// Otherwise (a dev chain that mines on demand, a chain that stalled, or one not yet measured) it
// probes, quickly after a transaction was sent, slowly after a long spell without blocks.
type headPacer struct {
	interval time.Duration // the block time, 0 while unknown
	periodic bool          // blocks come on a schedule, about every interval
	arrivals []arrival     // precisely seen arrivals, oldest first
	lead     time.Duration // how long before a block is due the poll window opens

	head     uint64
	known    bool      // head was read
	headAt   time.Time // when head was first seen (precisely or not)
	lastPoll time.Time // when the last poll went out
	opensAt  time.Time // when the current poll window opened (periodic)
	resync   bool      // a block came before its window: look every step until one is timed
	probe    time.Duration
	kickedAt time.Time
}

// seedFromTimestamps measures the block time from the timestamps (seconds) of consecutive recent
// blocks, newest first: the median gap. The chain makes blocks on a schedule when every gap is
// about that (timestamps are whole seconds, so within a second), or twice that (a slot nobody
// filled), and the newest block is recent at now.
func seedFromTimestamps(times []uint64, now time.Time) (interval time.Duration, periodic bool) {
	if len(times) < 3 {
		return 0, false
	}
	gaps := make([]time.Duration, 0, len(times)-1)
	for i := 1; i < len(times); i++ {
		if times[i] > times[i-1] {
			return 0, false
		}
		gaps = append(gaps, time.Duration(times[i-1]-times[i])*time.Second)
	}
	sorted := slices.Clone(gaps)
	slices.Sort(sorted)
	interval = sorted[len(sorted)/2]
	if interval == 0 || interval > maxBlockTime {
		return 0, false
	}
	tolerance := max(time.Second, interval/4)
	near := func(gap, want time.Duration) bool { return gap >= want-tolerance && gap <= want+tolerance }
	for _, gap := range gaps {
		if !near(gap, interval) && !near(gap, 2*interval) {
			return interval, false
		}
	}
	age := now.Sub(time.Unix(int64(times[0]), 0))
	return interval, age <= 2*interval+2*time.Second
}

// seed starts the pacer with a block time measured from timestamps.
func (p *headPacer) seed(interval time.Duration, periodic bool) {
	p.interval, p.periodic = interval, periodic && interval > 0
	p.lead = p.step() / 2
}

// timed reports whether the pacer polls on the chain's schedule as its own observations confirm
// it (not the timestamps alone), in phase.
func (p *headPacer) timed() bool { return p.periodic && len(p.arrivals) >= minArrivals && !p.resync }

// step is the pause between polls while a block is due.
func (p *headPacer) step() time.Duration {
	return min(max(p.interval/stepsPerBlock, stepFloor), stepCeiling)
}

// observe records that the poll sent at sentAt answered head, and reports whether the head
// changed. A new head seen by a poll that followed the previous one within a step or two is a
// precise arrival: it times the schedule.
func (p *headPacer) observe(head uint64, sentAt time.Time) bool {
	prev := p.lastPoll
	p.lastPoll = sentAt
	p.probe = min(2*max(p.probe, probeFloor), p.probeLimit(sentAt))
	if p.known && head == p.head {
		return false
	}
	advanced := p.known && head > p.head
	if p.known && !advanced {
		p.arrivals = p.arrivals[:0] // the chain went back: its schedule is timed anew
	}
	p.head, p.known, p.headAt = head, true, sentAt
	if !advanced {
		return true // the first head read, or the chain went back: nothing to time
	}
	if p.periodic && !p.opensAt.IsZero() {
		if prev.Before(p.opensAt) {
			// Found by the window's first poll: it came before the window opened, so the schedule
			// is off. Open windows earlier, and look every step until an arrival times it again.
			p.lead = min(2*p.lead, p.interval/2)
			p.resync = true
		} else {
			p.lead = max(p.step()/2, p.lead/2)
		}
	}
	if prev.IsZero() || sentAt.Sub(prev) > max(2*p.step(), probeStep+probeStep/2) {
		return true // seen long after the poll before: when it came is not known closely enough
	}
	// Half-way between the poll that missed it and the one that saw it.
	p.addArrival(arrival{number: head, at: prev.Add(sentAt.Sub(prev) / 2)})
	p.resync = false
	return true
}

func (p *headPacer) addArrival(a arrival) {
	if n := len(p.arrivals); n > 0 && a.number <= p.arrivals[n-1].number {
		p.arrivals = p.arrivals[:0] // the chain went back: start over
	}
	p.arrivals = append(p.arrivals, a)
	if len(p.arrivals) > keptArrivals {
		p.arrivals = p.arrivals[len(p.arrivals)-keptArrivals:]
	}
	if len(p.arrivals) < minArrivals {
		return // the timestamps' measure stands until there are a few gaps to go by
	}
	first, last := p.arrivals[0], p.arrivals[len(p.arrivals)-1]
	p.interval = last.at.Sub(first.at) / time.Duration(last.number-first.number)
	p.periodic = p.interval > 0 && p.interval <= maxBlockTime
	for i := 1; i < len(p.arrivals); i++ {
		a, b := p.arrivals[i-1], p.arrivals[i]
		gap := b.at.Sub(a.at) / time.Duration(b.number-a.number)
		if gap < p.interval*2/3 || gap > p.interval*3/2 {
			p.periodic = false
		}
	}
	p.lead = max(p.lead, p.step()/2)
}

// kick says that a transaction was sent or a waiter arrived. Unless the chain's schedule is
// timed (its blocks come when due, whoever sends what), the poller looks at kickLooks after, and
// probes from the floor again: a chain that mines on demand has the block at once.
func (p *headPacer) kick(now time.Time) {
	if p.timed() {
		return
	}
	p.kickedAt = now
	p.probe = 0
}

// next returns how long to wait, from now, before the next poll.
func (p *headPacer) next(now time.Time) time.Duration {
	d := p.planned(now)
	if !p.kickedAt.IsZero() && !p.timed() {
		for _, after := range kickLooks {
			if at := p.kickedAt.Add(after); at.After(p.lastPoll) {
				d = min(d, max(0, at.Sub(now)))
				break
			}
		}
	}
	return d
}

// planned is next without the looks after a kick.
func (p *headPacer) planned(now time.Time) time.Duration {
	if p.periodic && now.Sub(p.headAt) >= 3*p.interval {
		// Three block times without a block: the chain does not make blocks on its own (it mines
		// on demand), or it stalled. Probe until blocks come on a schedule again.
		p.periodic = false
		p.arrivals = p.arrivals[:0]
		p.opensAt = time.Time{}
		p.probe = p.step()
	}
	// Pauses count from the last poll, so that planning again (after a kick) never puts a poll
	// off.
	var at time.Time
	switch {
	case p.periodic && (len(p.arrivals) == 0 || p.resync):
		p.opensAt = time.Time{}
		at = p.lastPoll.Add(p.step()) // the schedule's phase is not known: every step until a block comes
	case p.periodic:
		if opens := p.due().Add(-p.lead); now.Before(opens) {
			p.opensAt = opens
			at = opens
		} else {
			at = p.lastPoll.Add(p.step()) // due, or a little late
		}
	default:
		at = p.lastPoll.Add(min(max(p.probe, probeFloor), p.probeLimit(now)))
	}
	return max(0, at.Sub(now))
}

// probeLimit is the longest pause between probes: probeStep, or probeCeiling once nothing
// happened for probeStall.
func (p *headPacer) probeLimit(now time.Time) time.Duration {
	if now.Sub(p.headAt) > probeStall && now.Sub(p.kickedAt) > probeStall {
		return probeCeiling
	}
	return probeStep
}

// due is the earliest time the next block may arrive by the schedule: each timed arrival
// projected forward by the block time, the earliest of them, so that a block that came late does
// not push the window past the next one.
func (p *headPacer) due() time.Time {
	var due time.Time
	for _, a := range p.arrivals {
		if a.number > p.head {
			continue
		}
		at := a.at.Add(time.Duration(p.head+1-a.number) * p.interval)
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due
}

// quiet is how long the follower goes without a new head before it tells its waiters to look at
// their receipts anyway (a node whose head is stuck behind the others, a subscription that went
// silent): three block times, between 2 and 30 seconds.
func (p *headPacer) quiet() time.Duration {
	return min(max(3*p.interval, 2*time.Second), 30*time.Second)
}
