package sqlite

import "context"

// OpenWithFlusher is Open with the charge groups' flush wrapped by wrap.
func OpenWithFlusher(ctx context.Context, path string, opts Options, wrap func(flush func() error) func() error) (*Store, error) {
	return open(ctx, path, opts, func(dbPath string) func() error { return wrap(walFlusher(dbPath)) })
}

// WriterSynchronous is the writer connection's PRAGMA synchronous (2 is FULL).
func (s *Store) WriterSynchronous(ctx context.Context) (int, error) {
	var level int
	err := s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level)
	return level, err
}
