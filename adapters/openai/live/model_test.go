package live_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/openai/live"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/livesim"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const apiKey = "sk-test-secret-key"

func newSim(t *testing.T, opts livesim.Options) (*livesim.Server, *live.Model, *testlog.Buffer) {
	t.Helper()
	opts.APIKey = apiKey
	sim := livesim.New(opts)
	t.Cleanup(sim.Close)
	var logs testlog.Buffer
	model := live.New(live.Options{
		URL:          sim.URL(),
		APIKey:       apiKey,
		Voice:        "marin",
		BackendModel: "gpt-5.5",
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return sim, model, &logs
}

func open(t *testing.T, model *live.Model) ports.SpeechSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := model.Open(ctx, ports.SpeechConfig{Instructions: "Be brief.", CallID: "CA1"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// recvEnd reads until the session ends and returns why.
func recvEnd(t *testing.T, s ports.SpeechSession) *ports.SessionEnded {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		_, err := s.Recv(ctx)
		if err == nil {
			continue
		}
		require.ErrorIs(t, err, ports.ErrClosed)
		var ended *ports.SessionEnded
		require.True(t, errors.As(err, &ended), "%v", err)
		return ended
	}
}

func TestConformance(t *testing.T) {
	porttest.SpeechModel(t, func(t *testing.T) porttest.SpeechHarness {
		sim, model, _ := newSim(t, livesim.Options{})
		return porttest.SpeechHarness{Model: model, Peer: sim}
	})
}
