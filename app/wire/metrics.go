package wire

import (
	"context"
	"errors"
	"time"

	"github.com/convgateway/gateway/adapters/metrics"
	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/ports"
)

// callsHooks feed m from the phone-call use case, whose speech model is
// that of backend ("realtime" or "live").
func callsHooks(m *metrics.Metrics, backend string) app.CallsHooks {
	return app.CallsHooks{
		CallStarted: m.CallStarted,
		CallEnded: func(s app.CallSummary) {
			m.CallEnded(metrics.Call{
				EndReason: s.EndReason, Duration: s.Duration,
				FramesIn: s.FramesIn, FramesOut: s.FramesOut, FramesDropped: s.FramesDropped,
				InputTokens: s.Usage.InputTokens, OutputTokens: s.Usage.OutputTokens,
				SpeechTime: s.Usage.Duration,
			})
		},
		FirstAudio:    m.FirstAudio,
		BargeIn:       m.BargeIn,
		ModelError:    func(code string) { m.SpeechError(backend, code) },
		StreamRefused: m.StreamRefused,
	}
}

// messagesHooks feed m from the WhatsApp/SMS use case.
func messagesHooks(m *metrics.Metrics) app.MessagesHooks {
	return app.MessagesHooks{
		Handled: func(o app.Outcome, _ time.Duration) { m.Message(string(o)) },
		AssistantReplied: func(d time.Duration, err error) {
			m.AssistantReplied(d, chatErrorCode(err))
		},
	}
}

// chatErrorCode names a chat assistant's error for the metrics: one of a
// few fixed codes, never the error's text.
func chatErrorCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ports.ErrRejected):
		return "rejected"
	case errors.Is(err, ports.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ports.ErrAssistantFailed):
		return "assistant_failed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "other"
	}
}
