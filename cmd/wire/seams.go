package wire

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

// newCalls makes the phone-call use case. Until app.NewCalls exists the
// gateway answers voice webhooks with 503 (callsUnavailable), so that the
// rest of the gateway can run; wiring app.NewCalls here from p (tokens,
// speech) and cfg (voice, instructions, turn detection, transcription model,
// token TTL, allowlist, AI speaks first, greeting) is the one change needed:
// Build drains any Calls that has a Shutdown method.
func newCalls(_ configs.Config, log *slog.Logger, _ parts) ports.Calls {
	log.Warn("phone calls are not available in this build: /incoming-call answers 503")
	return callsUnavailable{}
}

// callsUnavailable refuses every call with ports.ErrUnavailable.
type callsUnavailable struct{}

func (callsUnavailable) Answer(context.Context, ports.IncomingCall) (ports.CallAnswer, error) {
	return ports.CallAnswer{}, fmt.Errorf("wire: phone calls are not built in: %w", ports.ErrUnavailable)
}

func (callsUnavailable) Serve(_ context.Context, ch ports.TelephonyChannel) error {
	return ch.Close("phone calls are not available", false)
}
