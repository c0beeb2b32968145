package rest

import (
	"context"
	"errors"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

func TestErr(t *testing.T) {
	for status, want := range map[int]error{
		400: ports.ErrRejected, 401: ports.ErrRejected, 404: ports.ErrNotFound,
		408: ports.ErrUnavailable, 429: ports.ErrUnavailable, 500: ports.ErrUnavailable, 503: ports.ErrUnavailable,
	} {
		err := Err(t.Context(), &openai.Error{StatusCode: status, Code: "some_code", Message: "Incorrect API key provided: sk-secret"})
		require.ErrorIs(t, err, want, status)
		assert.Contains(t, err.Error(), "some_code")
		assert.NotContains(t, err.Error(), "sk-secret", "OpenAI's message may quote the key")
	}
	require.ErrorIs(t, Err(t.Context(), errors.New("dial tcp: connection refused")), ports.ErrUnavailable)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Err(ctx, errors.New("request failed"))
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ports.ErrUnavailable)
}
