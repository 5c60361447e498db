package faultrpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// maxBody bounds a request or answer the proxy reads.
const maxBody = 32 << 20

// call is one member of a request, with its raw bytes for forwarding untouched.
type call struct {
	Call
	id  json.RawMessage
	raw json.RawMessage
}

// request reads a JSON-RPC request body: one call or a batch. ok is false for anything else,
// which the proxy forwards as it is.
func request(body []byte) (calls []call, batch, ok bool) {
	trimmed := bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if json.Unmarshal(trimmed, &raws) != nil {
			return nil, false, false
		}
		batch = true
	default:
		raws = []json.RawMessage{trimmed}
	}
	for _, raw := range raws {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(raw, &m) != nil || m.Method == "" {
			return nil, false, false
		}
		c := call{Call: Call{Method: m.Method, Params: m.Params}, id: m.ID, raw: raw}
		if m.Method == "eth_sendRawTransaction" {
			c.Tx = decodeTx(m.Params)
		}
		calls = append(calls, c)
	}
	return calls, batch, len(calls) > 0
}

func decodeTx(params json.RawMessage) *types.Transaction {
	var args []string
	if json.Unmarshal(params, &args) != nil || len(args) != 1 {
		return nil
	}
	raw, err := hexutil.Decode(args[0])
	if err != nil {
		return nil
	}
	tx := new(types.Transaction)
	if tx.UnmarshalBinary(raw) != nil {
		return nil
	}
	return tx
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	down := p.hangup
	p.mu.Unlock()
	if down {
		hangup(w)
		return
	}
	body, err := readAll(r.Body)
	if err != nil {
		http.Error(w, "faultrpc: read request", http.StatusBadRequest)
		return
	}
	calls, batch, ok := request(body)
	if !ok {
		p.passThrough(w, r, body)
		return
	}
	perCall := make([]*Action, len(calls))
	var exchange *Action // the first transport fault: it decides the whole exchange
	var delay time.Duration
	for i, c := range calls {
		a, hit := p.pick(c.Call)
		switch {
		case !hit:
		case a.kind == actDelay:
			delay += a.delay
		case a.transport():
			if exchange == nil {
				exchange = &a
			}
		default:
			perCall[i] = &a
		}
	}
	if delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(delay):
		}
	}
	if exchange != nil && exchange.kind != actForwardThen {
		p.recordSends(calls, perCall, false)
		answerExchange(w, *exchange)
		return
	}
	answers, status, err := p.forwardCalls(r, calls, perCall, batch)
	if err != nil {
		http.Error(w, "faultrpc: node unreachable", http.StatusBadGateway)
		return
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	p.recordSends(calls, perCall, true)
	if exchange != nil { // forwarded; the answer is lost
		if after := *exchange.after; after.kind == actRPCError {
			for i := range calls {
				perCall[i] = &after
			}
		} else {
			answerExchange(w, after)
			return
		}
	}
	for i, c := range calls {
		if a := perCall[i]; a != nil && !a.forwards() {
			answers[i] = answerCall(c, *a)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if batch {
		out, _ := json.Marshal(answers)
		w.Write(out)
		return
	}
	w.Write(answers[0])
}

// forwardCalls sends the calls that have no answer of their own to the node, as one request,
// and returns the node's answers by position (nil for calls not forwarded), rewritten where a
// fault says so.
func (p *Proxy) forwardCalls(r *http.Request, calls []call, perCall []*Action, batch bool) ([]json.RawMessage, int, error) {
	answers := make([]json.RawMessage, len(calls))
	var forward []int
	for i := range calls {
		if perCall[i] == nil || perCall[i].forwards() {
			forward = append(forward, i)
		}
	}
	if len(forward) == 0 {
		return answers, http.StatusOK, nil
	}
	var body []byte
	if !batch {
		body = calls[0].raw
	} else {
		sub := make([]json.RawMessage, len(forward))
		for j, i := range forward {
			sub[j] = calls[i].raw
		}
		body, _ = json.Marshal(sub)
	}
	out, status, err := p.forward(r.Context(), body, r.Header)
	if err != nil || status != http.StatusOK {
		return nil, status, err
	}
	byID := map[string]json.RawMessage{}
	var raws []json.RawMessage
	if batch && json.Unmarshal(out, &raws) == nil {
		for _, raw := range raws {
			var m struct {
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(raw, &m) == nil {
				byID[idKey(m.ID)] = raw
			}
		}
	}
	for _, i := range forward {
		raw := json.RawMessage(out)
		if batch {
			raw = byID[idKey(calls[i].id)]
		}
		if a := perCall[i]; a != nil && a.kind == actRewrite {
			raw = rewriteResult(raw, a.rewrite)
		}
		if a := perCall[i]; a != nil && a.kind == actRetried {
			raw = p.retry(r, calls[i].raw, raw)
		}
		answers[i] = raw
	}
	return answers, http.StatusOK, nil
}

// retry forwards call again until the node's answer no longer says "already known" (or
// "replacement transaction underpriced"), for at most
// 5 s, and returns that answer (first, the first answer, if it never changes).
func (p *Proxy) retry(r *http.Request, call, first json.RawMessage) json.RawMessage {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, status, err := p.forward(r.Context(), call, r.Header)
		if err != nil || status != http.StatusOK {
			return first
		}
		// A pool that has not caught up with the block holding the transaction may still call
		// the same bytes a replacement of themselves: not moved on yet either.
		if !bytes.Contains(out, []byte("already known")) && !bytes.Contains(out, []byte("replacement transaction underpriced")) {
			return out
		}
		select {
		case <-r.Context().Done():
			return first
		case <-time.After(5 * time.Millisecond):
		}
	}
	return first
}

func idKey(id json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		return string(id)
	}
	return b.String()
}

func rewriteResult(raw json.RawMessage, fn func(json.RawMessage) json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	result, ok := m["result"]
	if !ok {
		return raw
	}
	m["result"] = fn(result)
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}

// answerCall is the proxy's own answer to a call that a fault keeps from the node.
func answerCall(c call, a Action) json.RawMessage {
	msg := map[string]any{"jsonrpc": "2.0", "id": c.id}
	switch a.kind {
	case actRPCError:
		msg["error"] = map[string]any{"code": a.code, "message": a.message}
	case actResult:
		msg["result"] = a.result
	case actDrop:
		if c.Tx == nil {
			msg["error"] = map[string]any{"code": -32602, "message": "faultrpc: not a transaction"}
		} else {
			msg["result"] = c.Tx.Hash().Hex()
		}
	}
	out, _ := json.Marshal(msg)
	return out
}

func answerExchange(w http.ResponseWriter, a Action) {
	switch a.kind {
	case actStatus:
		http.Error(w, strings.ToLower(http.StatusText(a.status)), a.status)
	default:
		hangup(w)
	}
}

// hangup closes the connection without writing an answer.
func hangup(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func (p *Proxy) recordSends(calls []call, perCall []*Action, forwarded bool) {
	for i, c := range calls {
		if c.Method != "eth_sendRawTransaction" {
			continue
		}
		a := perCall[i]
		p.recordSend(c.Tx, forwarded && (a == nil || a.forwards()))
	}
}

// passThrough forwards a body the proxy does not understand and copies the answer back.
func (p *Proxy) passThrough(w http.ResponseWriter, r *http.Request, body []byte) {
	out, status, err := p.forward(r.Context(), body, r.Header)
	if err != nil {
		http.Error(w, "faultrpc: node unreachable", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(out)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, maxBody)) }
