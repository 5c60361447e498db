package devchain

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestGethLoggerKeepsWarningsOnly(t *testing.T) {
	var buf bytes.Buffer
	logger := gethLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	logger.Info("chatty info")
	logger.Debug("chatty debug")
	logger.With("component", "txpool").Warn("something odd", "n", 1)
	logger.Error("something broke")

	out := buf.String()
	if strings.Contains(out, "chatty") {
		t.Errorf("info/debug records leaked through:\n%s", out)
	}
	for _, want := range []string{"something odd", "component=txpool", "something broke"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
