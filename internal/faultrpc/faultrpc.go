// Package faultrpc is a JSON-RPC proxy for tests: it stands between a client and a real node
// (the embedded dev chain) on loopback, forwards every call, and applies scripted faults per
// method, inside batches too: the endpoint down (connection refused, or closed without an
// answer), slow, answering an HTTP 5xx or a JSON-RPC error, a send forwarded whose answer is
// lost, a send answered but never forwarded (a dropped transaction), a wrong chain id, a lagging
// block number, null receipts. It counts the calls of each method and records every transaction
// sent through it.
//
// It is an ordinary package, not a _test file, so that the tests of every package that talks to
// a chain can use it; it never imports package testing. It must not be used outside tests.
package faultrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Proxy is a running fault-injecting proxy. Create it with Start; Close it when done.
type Proxy struct {
	target *url.URL
	client *http.Client

	mu     sync.Mutex
	faults []*activeFault
	calls  map[string]int
	sent   []Sent
	addr   string
	ln     net.Listener
	srv    *http.Server
	hangup bool // down, closing every connection without an answer
	closed bool

	nonceMu      sync.Mutex
	firstAtNonce map[string]common.Hash // sender/nonce -> the first transaction seen there
}

type activeFault struct {
	Fault
	seen, applied int
}

// Sent is a transaction that reached the proxy in an eth_sendRawTransaction call.
type Sent struct {
	Hash      common.Hash
	Nonce     uint64
	Forwarded bool // false when a fault kept it from the node
}

// Start listens on a free loopback port and forwards to target, a node's HTTP JSON-RPC URL.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("faultrpc: target must be an http(s) URL")
	}
	p := &Proxy{
		target:       u,
		client:       &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}},
		calls:        map[string]int{},
		firstAtNonce: map[string]common.Hash{},
	}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proxy) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("faultrpc: listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	p.ln, p.srv, p.addr = ln, srv, ln.Addr().String()
	go srv.Serve(ln)
	return nil
}

// URL is the proxy's JSON-RPC URL.
func (p *Proxy) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.addr
}

// Retarget forwards to another node from now on. Pointing the proxy at a fresh chain with the
// same genesis is, to the client, a chain that rewound: its blocks, and the transactions in
// them, are gone.
func (p *Proxy) Retarget(target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("faultrpc: target must be an http(s) URL")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = u
	return nil
}

// Add appends faults; a call gets the first added fault that matches it.
func (p *Proxy) Add(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range faults {
		p.faults = append(p.faults, &activeFault{Fault: f})
	}
}

// Reset removes every fault (the counters and the record of sends stay).
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Calls is how many calls of method the proxy received, batch members included.
func (p *Proxy) Calls(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// Sent lists every transaction sent through the proxy, in arrival order.
func (p *Proxy) Sent() []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sent(nil), p.sent...)
}

// Down modes.
type Down int

const (
	// Up serves normally.
	Up Down = iota
	// RefuseConnections closes the listener: new connections are refused, open ones closed.
	RefuseConnections
	// CloseConnections accepts connections and closes each one at its first request, without
	// an answer.
	CloseConnections
)

// SetDown takes the endpoint down in the given mode, or back Up on the same address.
func (p *Proxy) SetDown(mode Down) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultrpc: closed")
	}
	p.hangup = mode == CloseConnections
	switch {
	case mode == RefuseConnections && p.srv != nil:
		return p.stopLocked()
	case mode != RefuseConnections && p.srv == nil:
		return p.listen(p.addr)
	}
	return nil
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.client.CloseIdleConnections()
	if p.srv == nil {
		return nil
	}
	return p.stopLocked()
}

// stopLocked closes the listener itself as well as the server: a server whose Serve has not
// started yet would leave it open, accepting connections nobody serves.
func (p *Proxy) stopLocked() error {
	lerr := p.ln.Close()
	err := p.srv.Close()
	p.srv, p.ln = nil, nil
	// Whichever closes the listener second sees it closed already: that is no failure.
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if err == nil && !errors.Is(lerr, net.ErrClosed) {
		err = lerr
	}
	return err
}

// pick returns the action for a call, if a fault applies, and records sends.
func (p *Proxy) pick(c Call) (Action, bool) {
	if c.Tx != nil {
		key := nonceKey(c.Tx)
		p.nonceMu.Lock()
		if _, ok := p.firstAtNonce[key]; !ok {
			p.firstAtNonce[key] = c.Tx.Hash()
		}
		p.nonceMu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[c.Method]++
	for _, f := range p.faults {
		if f.Method != "" && f.Method != c.Method {
			continue
		}
		if f.Times > 0 && f.applied >= f.Times {
			continue
		}
		if f.If != nil && !f.If(c) {
			continue
		}
		if f.seen++; f.seen <= f.Skip {
			continue
		}
		f.applied++
		return f.Do, true
	}
	return Action{}, false
}

func (p *Proxy) recordSend(tx *types.Transaction, forwarded bool) {
	if tx == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, Sent{Hash: tx.Hash(), Nonce: tx.Nonce(), Forwarded: forwarded})
}

func nonceKey(tx *types.Transaction) string {
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return tx.Hash().Hex()
	}
	return fmt.Sprintf("%s/%d", from.Hex(), tx.Nonce())
}

// forward sends body to the node and returns its answer's body and status.
func (p *Proxy) forward(ctx context.Context, body []byte, header http.Header) ([]byte, int, error) {
	p.mu.Lock()
	target := p.target.String()
	p.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytesReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a := header.Get("Accept"); a != "" {
		req.Header.Set("Accept", a)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := readAll(resp.Body)
	return out, resp.StatusCode, err
}
