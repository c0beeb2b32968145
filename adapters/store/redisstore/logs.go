package redisstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteLogs sends go-redis's own messages (for example "failed to dial"
// while Redis is down) to log at warn level, instead of its default: plain
// lines on stderr, outside the gateway's JSON log. go-redis has one logger
// per process, so this is process-wide: call it once, from main. The
// messages name addresses, never passwords.
func RouteLogs(log *slog.Logger) { redis.SetLogger(logger{log}) }

type logger struct{ log *slog.Logger }

func (l logger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
