package app

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns the service's logger: JSON lines on w (Lambda forwards
// stdout to CloudWatch Logs) at level ("DEBUG", "INFO", "WARN", "ERROR";
// anything else means INFO), with the message key named "message" and the
// level as Lambda's JSON log format spells it.
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: l,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.MessageKey {
				a.Key = "message"
			}
			return a
		},
	}))
}
