package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payper/payper/chain/devkeys"
	"github.com/payper/payper/scheme/exact"
	"github.com/payper/payper/x402"
)

// authPlan hands workers the paid requests for one server's exact offer: each carries an
// EIP-3009 authorization of its own (a random nonce), signed by one of the payer accounts in
// turn. Authorizations do not depend on each other, so unlike vouchers any request may go
// first; each worker still gets its own list, so workers never contend for one.
//
// As in channel mode, requests are signed ahead of a measured phase (presign), after an
// unmeasured calibration pass that signs as it goes; a worker that runs past its list signs on
// the spot, and the report counts those.
type authPlan struct {
	offer    x402.PaymentRequirements
	resource *x402.ResourceInfo
	path     string
	host     string
	payers   []*exact.Signer
	built    [][][]byte // per worker: pre-built requests not yet sent
	signed   []int      // per worker: requests built so far, which picks the payer
	inline   atomic.Int64
}

func newAuthPlan(offer x402.PaymentRequirements, resource *x402.ResourceInfo, path, host string, workers int) *authPlan {
	p := &authPlan{
		offer: offer, resource: resource, path: path, host: host,
		built: make([][][]byte, workers), signed: make([]int, workers),
	}
	for _, a := range devkeys.DevAccounts(firstPayer + payerCount)[firstPayer:] { // public test mnemonic
		p.payers = append(p.payers, &exact.Signer{Key: a.Key})
	}
	return p
}

// build signs worker w's next request. Only worker w, or presign for w, calls it.
func (p *authPlan) build(w int) ([]byte, error) {
	payer := p.payers[(w+p.signed[w])%len(p.payers)]
	p.signed[w]++
	pp, err := payer.CreatePayload(p.offer, p.resource)
	if err != nil {
		return nil, err
	}
	h, err := x402.EncodeHeader(pp)
	if err != nil {
		return nil, err
	}
	return buildRequestFor(p.path, p.host, h), nil
}

// request returns worker w's next request and whether it had to be signed now.
func (p *authPlan) request(w, _ int) ([]byte, bool, error) {
	if list := p.built[w]; len(list) > 0 {
		r := list[0]
		list[0] = nil // sent once; let it go
		p.built[w] = list[1:]
		return r, false, nil
	}
	p.inline.Add(1)
	r, err := p.build(w)
	return r, true, err
}

// presign builds perWorker requests for every worker, signing on all cores. Each
// authorization is valid for the offer's maxTimeoutSeconds from now, as a client signing just
// before sending would make it.
func (p *authPlan) presign(perWorker int) (presignStats, error) {
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
				list := make([][]byte, 0, perWorker)
				for range perWorker {
					r, err := p.build(w)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						break
					}
					nbytes.Add(int64(len(r)))
					list = append(list, r)
				}
				p.built[w] = list
			}
		}()
	}
	for w := range p.built {
		workers <- w
	}
	close(workers)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return presignStats{}, fmt.Errorf("presign: %w", err)
	}
	return presignStats{
		Vouchers: perWorker * len(p.built), Bytes: nbytes.Load(), Seconds: time.Since(start).Seconds(), PerWorker: perWorker,
	}, nil
}

// release drops whatever pre-built requests were not sent.
func (p *authPlan) release() {
	for w := range p.built {
		p.built[w] = nil
	}
}

// fetchExactOffer asks a server for url's 402 and returns its exact offer and the resource it
// names, which a stock client copies into its payment.
func fetchExactOffer(ctx context.Context, client *http.Client, url string) (x402.PaymentRequirements, *x402.ResourceInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return x402.PaymentRequirements{}, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return x402.PaymentRequirements{}, nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return x402.PaymentRequirements{}, nil, fmt.Errorf("GET %s: status %d, want 402", url, resp.StatusCode)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired), 0)
	if err != nil {
		return x402.PaymentRequirements{}, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	for _, a := range pr.Accepts {
		if a.Scheme == exact.Scheme {
			return a, &pr.Resource, nil
		}
	}
	return x402.PaymentRequirements{}, nil, fmt.Errorf("GET %s offers no %s payment", url, exact.Scheme)
}
