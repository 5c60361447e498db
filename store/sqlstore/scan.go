package sqlstore

import (
	"fmt"
	"math/big"
	"time"

	"github.com/payper/payper/store"
)

type rowScanner interface {
	Scan(dest ...any) error
}

func scanPayment(row rowScanner) (store.Payment, error) {
	var p store.Payment
	var status string
	var async, queued int64
	err := row.Scan(&p.ID, &p.Scheme, &p.Network, &p.Asset, &p.Payer, &p.PayTo,
		amountDest{&p.Amount}, &p.Nonce, timeDest{&p.ValidBefore},
		&p.Method, &p.Route, &p.Resource, &status, &p.TxHash, &p.ErrorReason,
		timeDest{&p.CreatedAt}, timeDest{&p.UpdatedAt}, &async, &queued, &p.Payload)
	p.Status = store.PaymentStatus(status)
	p.Async, p.Queued = async == 1, queued == 1
	return p, err
}

// amountDest reads a decimal integer column (TEXT in SQLite, NUMERIC in
// PostgreSQL) into a *big.Int.
type amountDest struct{ v **big.Int }

func (d amountDest) Scan(src any) error {
	if v, ok := src.(int64); ok {
		*d.v = big.NewInt(v)
		return nil
	}
	text, err := columnText("amount", src, false)
	if err != nil {
		return err
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return fmt.Errorf("amount: %q is not a decimal integer", text)
	}
	*d.v = n
	return nil
}

// timeDest reads a timestamp stored as Unix microseconds (SQLite) or as a
// native timestamp (PostgreSQL) and returns it in UTC.
type timeDest struct{ v *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*d.v = time.UnixMicro(v).UTC()
	case time.Time:
		*d.v = v.UTC()
	default:
		return fmt.Errorf("timestamp: unexpected %T", src)
	}
	return nil
}

// columnText reads a text column as the driver hands it over (string or bytes); NULL is "" when
// nullable.
func columnText(what string, src any, nullable bool) (string, error) {
	switch v := src.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case nil:
		if nullable {
			return "", nil
		}
	}
	return "", fmt.Errorf("%s: unexpected %T", what, src)
}
