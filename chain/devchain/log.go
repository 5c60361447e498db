package devchain

import (
	"context"
	"log/slog"

	"github.com/ethereum/go-ethereum/log"
)

// gethLogger routes the node's own log output to logger, keeping only
// warnings and errors; geth is very chatty at info level. Subsystems that log
// through geth's global logger stay silent (it discards by default).
func gethLogger(logger *slog.Logger) log.Logger {
	return log.NewLogger(minLevelHandler{inner: logger.Handler(), min: slog.LevelWarn})
}

// minLevelHandler drops records below min before they reach inner.
type minLevelHandler struct {
	inner slog.Handler
	min   slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.inner.Enabled(ctx, level)
}

func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	if _, expected := expectedWarnings[r.Message]; expected {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

// expectedWarnings are warnings the dev node gives by design (it has no peers on purpose); they
// would only alarm a newcomer.
var expectedWarnings = map[string]struct{}{
	"P2P server will be useless, neither dialing nor listening": {},
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{inner: h.inner.WithAttrs(attrs), min: h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{inner: h.inner.WithGroup(name), min: h.min}
}

var _ slog.Handler = minLevelHandler{}
