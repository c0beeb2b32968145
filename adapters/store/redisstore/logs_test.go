package redisstore

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoutedLogsAreJSON(t *testing.T) {
	var buf bytes.Buffer
	l := logger{slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: failed to dial after %d attempts: %s", 5, "dial tcp 127.0.0.1:6379: connect: connection refused")
	assert.Contains(t, buf.String(), `"level":"WARN"`)
	assert.Contains(t, buf.String(), `"msg":"redis: failed to dial after 5 attempts: dial tcp 127.0.0.1:6379: connect: connection refused"`)
	assert.Contains(t, buf.String(), `"component":"go-redis"`)
}
