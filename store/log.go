package store

import (
	"context"
	"fmt"
	"log/slog"
)

// natsLogger routes the embedded NATS server's log lines to slog. NATS
// "notices" (startup banner, stream recovery) are Debug: they are chatty and
// only useful when diagnosing the store itself. Warnings and errors keep
// their level. NATS never sees the store key itself, only a derived subkey,
// and does not log it.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) logf(level slog.Level, format string, v []any) {
	if !n.l.Enabled(context.Background(), level) {
		return
	}
	n.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats")
}

func (n natsLogger) Noticef(format string, v ...any) { n.logf(slog.LevelDebug, format, v) }
func (n natsLogger) Warnf(format string, v ...any)   { n.logf(slog.LevelWarn, format, v) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.logf(slog.LevelError, format, v) }
func (n natsLogger) Errorf(format string, v ...any)  { n.logf(slog.LevelError, format, v) }
func (n natsLogger) Debugf(format string, v ...any)  { n.logf(slog.LevelDebug, format, v) }
func (n natsLogger) Tracef(format string, v ...any)  { n.logf(slog.LevelDebug-4, format, v) }
