package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// voucherPlan hands each worker the requests it sends to the gateway. Worker w owns channels
// w, w+workers, w+2·workers, …; its i-th request overall pays channel owned[i mod m] with that
// channel's voucher number i div m, so every channel's vouchers arrive in order. A cursor per
// worker carries i across phases.
//
// Signing happens in two steps. A calibration pass (unmeasured, before phase B's own warm-up)
// signs as it goes and measures the gateway's rate; then presign builds enough requests for
// the whole phase at three times that rate, as ready HTTP/1.1 bytes, so the measured loop only
// writes bytes. Presigning for the bare proxy's rate instead would cost several times the
// memory and time for vouchers that are never sent. A worker that runs past its pre-built
// requests signs the next ones itself; that count is reported, since such signing competes
// with the gateway for CPU.
type voucherPlan struct {
	set    *channelSet
	host   string
	owned  [][]int    // per worker: channel indexes
	cursor []int      // per worker: index of its next request
	base   []int      // per worker: index of built[w][0]
	built  [][][]byte // per worker: pre-built requests from base on
	inline atomic.Int64
}

func newVoucherPlan(set *channelSet, workers int, host string) *voucherPlan {
	p := &voucherPlan{
		set: set, host: host, owned: make([][]int, workers),
		cursor: make([]int, workers), base: make([]int, workers), built: make([][][]byte, workers),
	}
	for c := range set.signers {
		p.owned[c%workers] = append(p.owned[c%workers], c)
	}
	return p
}

// presignStats describe the signing done for the gateway phase.
type presignStats struct {
	CalibrationRPS float64 `json:"calibrationRequestsPerSecond"` // warm-up, signing inline
	Vouchers       int     `json:"vouchers"`
	Bytes          int64   `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	PerWorker      int     `json:"perWorker"`
}

// presign builds perWorker requests for every worker from its cursor on, signing on all cores.
func (p *voucherPlan) presign(perWorker int) (presignStats, error) {
	start := time.Now()
	workers := make(chan int)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		nbytes atomic.Int64
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range workers {
				built := make([][]byte, 0, perWorker)
				for i := p.cursor[w]; i < p.cursor[w]+perWorker; i++ {
					r, err := p.build(w, i)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						break
					}
					nbytes.Add(int64(len(r)))
					built = append(built, r)
				}
				p.base[w], p.built[w] = p.cursor[w], built
			}
		}()
	}
	for w := range p.owned {
		workers <- w
	}
	close(workers)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return presignStats{}, fmt.Errorf("presign: %w", err)
	}
	return presignStats{
		Vouchers: perWorker * len(p.owned), Bytes: nbytes.Load(), Seconds: time.Since(start).Seconds(), PerWorker: perWorker,
	}, nil
}

// build signs worker w's request number i.
func (p *voucherPlan) build(w, i int) ([]byte, error) {
	m := len(p.owned[w])
	h, err := p.set.voucherHeader(p.owned[w][i%m], i/m)
	if err != nil {
		return nil, err
	}
	return buildRequest(p.host, h), nil
}

// request returns worker w's next request and whether it had to be signed now. Only worker w
// calls it for w, and phases do not overlap.
func (p *voucherPlan) request(w, _ int) ([]byte, bool, error) {
	i := p.cursor[w]
	p.cursor[w]++
	if j := i - p.base[w]; j >= 0 && j < len(p.built[w]) {
		r := p.built[w][j]
		p.built[w][j] = nil // sent once; let it go
		return r, false, nil
	}
	p.inline.Add(1)
	r, err := p.build(w, i)
	return r, true, err
}

// release drops whatever pre-built requests were not sent.
func (p *voucherPlan) release() {
	for w := range p.built {
		p.built[w] = nil
	}
}

// buildRequest is one GET of the priced route, with a payment header unless it is empty.
func buildRequest(host, paymentHeader string) []byte {
	return buildRequestFor(quotePath, host, paymentHeader)
}

// buildRequestFor is one GET of path, with a payment header unless it is empty.
func buildRequestFor(path, host, paymentHeader string) []byte {
	r := make([]byte, 0, 96+len(path)+len(host)+len(paymentHeader))
	r = append(r, "GET "...)
	r = append(r, path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, host...)
	r = append(r, "\r\nUser-Agent: payper-bench\r\n"...)
	if paymentHeader != "" {
		r = append(r, "Payment-Signature: "...)
		r = append(r, paymentHeader...)
		r = append(r, "\r\n"...)
	}
	return append(r, "\r\n"...)
}

// presignBudget is how many requests each worker gets ahead for a phase: three times the
// calibrated gateway rate (which signing inline held down, and other load on the machine may
// have too), at most limit in total. Without a calibration it falls back to the bare proxy's
// rate with a margin for uneven workers: the gateway does strictly more work per request.
func presignBudget(calibratedRPS, bareRPS float64, phase time.Duration, workers, limit int) int {
	perWorker := func(rps, margin float64) int { return int(margin*rps*phase.Seconds()/float64(workers)) + 64 }
	n := perWorker(calibratedRPS, 3)
	if calibratedRPS <= 0 {
		n = perWorker(bareRPS, 1.25)
	}
	if n*workers > limit {
		n = limit / workers
	}
	return n
}
