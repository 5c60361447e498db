package account

import (
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Flight is a nonce the settler signed a transaction for. Every variant signed at that nonce (the
// first, then replacements with higher fees) does the same call, and at most one of them can be
// mined: whichever is, is the outcome.
type Flight struct {
	nonce    uint64
	call     txCall
	onSigned func(common.Hash) error // the write-ahead hook, called again for each replacement
	filler   bool                    // a 0-value transfer to self that fills a nonce gap

	// Guarded by sender.track.
	txs           []*types.Transaction // oldest first
	signedAt      time.Time            // when the newest variant was signed
	passedAt      time.Time            // when the chain's nonce was first seen past this one
	winner        common.Hash          // the variant seen mined
	ceilingLogged bool
}

// landedKept is how many mined flights a sender keeps: after a chain rewinds, the transactions
// it lost are re-broadcast from these rather than their nonces filled with empty transfers.
const landedKept = 1024

// landedFlights are the most recent mined flights, by nonce.
type landedFlights struct {
	max     int
	byNonce map[uint64]*Flight
	order   []*Flight // oldest first
}

func newLandedFlights(max int) *landedFlights {
	return &landedFlights{max: max, byNonce: map[uint64]*Flight{}}
}

// add keeps fl and returns the flights it pushed out.
func (l *landedFlights) add(fl *Flight) (evicted []*Flight) {
	if old := l.byNonce[fl.nonce]; old != nil && old != fl {
		l.remove(old)
		evicted = append(evicted, old)
	}
	if l.byNonce[fl.nonce] == fl {
		return evicted
	}
	l.byNonce[fl.nonce] = fl
	l.order = append(l.order, fl)
	for len(l.order) > l.max {
		evicted = append(evicted, l.order[0])
		delete(l.byNonce, l.order[0].nonce)
		l.order = l.order[1:]
	}
	return evicted
}

func (l *landedFlights) remove(fl *Flight) {
	if l.byNonce[fl.nonce] == fl {
		delete(l.byNonce, fl.nonce)
	}
	l.order = slices.DeleteFunc(l.order, func(x *Flight) bool { return x == fl })
}

// addVariant records tx as fl's newest variant and fl as the flight of its nonce.
func (s *Sender) addVariant(fl *Flight, tx *types.Transaction) {
	s.track.Lock()
	defer s.track.Unlock()
	fl.txs = append(fl.txs, tx)
	fl.signedAt = s.now()
	s.flights[fl.nonce] = fl
	s.byHash[tx.Hash()] = fl
}

// dropVariant forgets a variant no node took.
func (s *Sender) dropVariant(fl *Flight, tx *types.Transaction) {
	s.track.Lock()
	defer s.track.Unlock()
	fl.txs = slices.DeleteFunc(fl.txs, func(x *types.Transaction) bool { return x == tx })
	delete(s.byHash, tx.Hash())
}

// forget drops a flight no node took.
func (s *Sender) forget(fl *Flight) {
	s.track.Lock()
	defer s.track.Unlock()
	s.forgetLocked(fl)
}

func (s *Sender) forgetLocked(fl *Flight) {
	if s.flights[fl.nonce] == fl {
		delete(s.flights, fl.nonce)
	}
	for _, tx := range fl.txs {
		if s.byHash[tx.Hash()] == fl {
			delete(s.byHash, tx.Hash())
		}
	}
}

// Land moves fl from the flights to the landed ones. winner is the variant seen mined, zero when
// the chain's nonce went past fl without a receipt of ours being seen yet.
func (s *Sender) Land(fl *Flight, winner common.Hash) {
	s.track.Lock()
	defer s.track.Unlock()
	s.landLocked(fl, winner)
}

func (s *Sender) landLocked(fl *Flight, winner common.Hash) {
	if winner != (common.Hash{}) && fl.winner == (common.Hash{}) {
		fl.winner = winner
		if tx := variantLocked(fl, winner); tx != nil {
			s.funds.spend(cost(fl.call, feesOf(tx)))
		}
		// Nonces are used in order: every flight below this one is mined too.
		s.passedLocked(fl.nonce)
	}
	if s.flights[fl.nonce] == fl {
		delete(s.flights, fl.nonce)
	}
	for _, old := range s.landed.add(fl) {
		s.forgetLocked(old)
	}
}

func variantLocked(fl *Flight, hash common.Hash) *types.Transaction {
	for _, tx := range fl.txs {
		if tx.Hash() == hash {
			return tx
		}
	}
	return nil
}

// passedLocked lands every flight below the chain's nonce latest: its nonce is used, by one of
// its variants or by another transaction. Their waiters find out which.
func (s *Sender) passedLocked(latest uint64) {
	now := s.now()
	for n, fl := range s.flights {
		if n < latest {
			fl.passedAt = now
			s.landLocked(fl, common.Hash{})
		}
	}
}

// held returns the flight at nonce, in flight or landed (a landed one is put back in flight:
// the chain lost it).
func (s *Sender) heldLocked(nonce uint64) *Flight {
	if fl := s.flights[nonce]; fl != nil {
		return fl
	}
	fl := s.landed.byNonce[nonce]
	if fl == nil {
		return nil
	}
	s.landed.remove(fl)
	fl.passedAt = time.Time{}
	s.flights[nonce] = fl
	return fl
}

// FlightOf returns the flight one of whose variants has hash, or nil.
func (s *Sender) FlightOf(hash common.Hash) *Flight {
	s.track.Lock()
	defer s.track.Unlock()
	return s.byHash[hash]
}

// Variants lists the hashes signed for fl, the newest first (the likeliest to be mined).
func (s *Sender) Variants(fl *Flight) []common.Hash {
	s.track.Lock()
	defer s.track.Unlock()
	out := make([]common.Hash, len(fl.txs))
	for i, tx := range fl.txs {
		out[len(fl.txs)-1-i] = tx.Hash()
	}
	return out
}

// rebroadcastable is the variant to send again for fl: the one mined before, if the chain lost
// it, or else the newest.
func (s *Sender) rebroadcastable(fl *Flight) *types.Transaction {
	s.track.Lock()
	defer s.track.Unlock()
	if tx := variantLocked(fl, fl.winner); tx != nil {
		return tx
	}
	if len(fl.txs) == 0 {
		return nil
	}
	return fl.txs[len(fl.txs)-1]
}

// PassedFor is how long the chain's nonce has been past fl (0 while it is not).
func (s *Sender) PassedFor(fl *Flight) time.Duration {
	s.track.Lock()
	defer s.track.Unlock()
	if fl.passedAt.IsZero() {
		return 0
	}
	return s.now().Sub(fl.passedAt)
}

// idle reports whether no transaction is in flight.
func (s *Sender) idle() bool {
	s.track.Lock()
	defer s.track.Unlock()
	return len(s.flights) == 0
}

// inflightCost is what the transactions in flight reserve from the balance.
func (s *Sender) inflightCost() *big.Int {
	s.track.Lock()
	defer s.track.Unlock()
	total := new(big.Int)
	for _, fl := range s.flights {
		if n := len(fl.txs); n > 0 {
			total.Add(total, cost(fl.call, feesOf(fl.txs[n-1])))
		}
	}
	return total
}

// Nonce is the nonce the flight's transactions share.
func (fl *Flight) Nonce() uint64 { return fl.nonce }

// Forget drops the flight carrying hash from the sender's records, in flight or landed, as if
// it had never been signed: its nonce is then a gap for the next repair to fill or, above every
// nonce the sender holds, given back. It is for an operator who knows the transaction is gone for
// good.
func (s *Sender) Forget(hash common.Hash) {
	s.track.Lock()
	defer s.track.Unlock()
	if fl := s.byHash[hash]; fl != nil {
		s.landed.remove(fl)
		s.forgetLocked(fl)
	}
}
