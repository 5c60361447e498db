package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/payper/payper/config"
	"github.com/payper/payper/store"
	"github.com/payper/payper/store/postgres"
	"github.com/payper/payper/store/sqlite"
)

func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Database.Driver {
	case config.DriverSQLite:
		if err := os.MkdirAll(filepath.Dir(cfg.Database.DSN), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		s, err := sqlite.Open(ctx, cfg.Database.DSN, sqlite.Options{Logger: log.With("component", "store")})
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		return s, nil
	case config.DriverPostgres:
		s, err := postgres.Open(ctx, cfg.Database.DSN, postgres.Options{Logger: log.With("component", "store")})
		if err != nil {
			return nil, fmt.Errorf("postgres store: %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("database driver %q is not supported", cfg.Database.Driver)
	}
}
