package app

import (
	"crypto/sha256"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/payper/payper/config"
	"github.com/payper/payper/x402"
)

// Events of the streaming tests: one at once, then one every streamEvery.
const (
	streamEvents = 10
	streamEvery  = 300 * time.Millisecond
	// streamLag bounds how long an event may take through the gateway once the stream flows:
	// loopback takes well under a millisecond, the rest is room for a loaded machine.
	streamLag = 150 * time.Millisecond
)

// TestPaidEventStreamArrivesEventByEvent pays for a Server-Sent Events route with the default
// configuration (nothing about settlement flows set), with an exact payment and with a channel
// voucher, and checks that each event reaches the caller as the upstream sends it. A channel
// charge is final at the upstream's headers, so its first event comes as fast as on a free
// route; an exact payment settles at the headers first.
func TestPaidEventStreamArrivesEventByEvent(t *testing.T) {
	up := newStreamUpstream(t)
	e := startEnv(t, up.server.URL)
	_, base := e.startGatewayFull(func(c *config.Config) { streamRoutes(c, up.server.URL) })
	path := "/s/events?n=" + strconv.Itoa(streamEvents) + "&every=" + streamEvery.String()

	free := readEvents(t, up, base+"/free/events?n="+strconv.Itoa(streamEvents)+"&every="+streamEvery.String(), "")
	checkEventByEvent(t, "unpriced", free, streamEvents, streamLag)

	payer := account(6)
	before := e.balance(payer.Address)
	paid := readEvents(t, up, base+path, encode(t, signPayment(t, payer.Key, challenge(t, "GET", base+path))))
	checkEventByEvent(t, "exact", paid, streamEvents, streamLag)
	if paid.settlement == nil || !paid.settlement.Success || paid.settlement.Transaction == "" {
		t.Fatalf("exact: the stream must carry its settlement in PAYMENT-RESPONSE: %+v", paid.settlement)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
		t.Fatalf("exact: payer spent %s, want 1000", spent)
	}

	channel := newChannelPayer(t, base+path, account(7).Key)
	if r := send(t, "GET", base+"/s/large?mib=0", channel.deposit(100_000, 1000)); r.status != 200 {
		t.Fatalf("channel deposit: %d %s", r.status, r.body)
	}
	voucher := readEvents(t, up, base+path, channel.voucher(2000))
	checkEventByEvent(t, "channel", voucher, streamEvents, streamLag)
	if voucher.settlement == nil || !voucher.settlement.Success {
		t.Fatalf("channel: settlement %+v", voucher.settlement)
	}
	// The voucher's first event is as early as a free route's, give or take the charge.
	if voucher.firstEvent() > free.firstEvent()+streamEvery/2 {
		t.Fatalf("channel: first event after %s, unpriced after %s", voucher.firstEvent(), free.firstEvent())
	}
	t.Logf("first event: unpriced %s, exact %s, channel %s", free.firstEvent(), paid.firstEvent(), voucher.firstEvent())
}

// TestPaidLargeBodyStreams pays for a body larger than any buffer a paid route keeps (40 MiB,
// no Content-Length) with the default configuration, and gets all of it, charged once.
func TestPaidLargeBodyStreams(t *testing.T) {
	up := newStreamUpstream(t)
	e := startEnv(t, up.server.URL)
	_, base := e.startGatewayFull(func(c *config.Config) { streamRoutes(c, up.server.URL) })
	url := base + "/s/large?mib=40"
	want := fetchDigest(t, up.server.URL+"/s/large?mib=40", "")

	payer := account(5)
	before := e.balance(payer.Address)
	got := fetchDigest(t, url, encode(t, signPayment(t, payer.Key, challenge(t, "GET", url))))
	if got != want {
		t.Fatalf("the paid body differs from the upstream's (%d bytes against %d)", got.size, want.size)
	}
	if spent := new(big.Int).Sub(before, e.balance(payer.Address)); spent.Int64() != 1000 {
		t.Fatalf("payer spent %s, want 1000", spent)
	}
}

// bodyDigest is what a test keeps of a large body.
type bodyDigest struct {
	size int64
	sum  [32]byte
}

// fetchDigest reads a whole body, failing unless it is a 200 with a successful settlement when
// paid.
func fetchDigest(t *testing.T, url, payment string) bodyDigest {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if payment != "" {
		req.Header.Set(x402.HeaderPaymentSignature, payment)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	if payment != "" {
		s, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse), 0)
		if err != nil || !s.Success {
			t.Fatalf("settlement %+v %v", s, err)
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var d bodyDigest
	d.size = n
	copy(d.sum[:], h.Sum(nil))
	return d
}
