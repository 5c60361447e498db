package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/payper/payper/store"
	"github.com/payper/payper/store/sqlite"
	"github.com/payper/payper/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "payper.db")
		return func(ctx context.Context, cfg storetest.Config) (store.Store, error) {
			s, err := sqlite.Open(ctx, path, sqlite.Options{Now: cfg.Now})
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	})
}
