package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/metrics"
)

// scrape returns the metrics as Prometheus would read them.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "text/plain")
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := metrics.New()
	m.CallStarted()
	m.CallStarted()
	m.FirstAudio(300 * time.Millisecond)
	m.BargeIn()
	m.BargeIn()
	m.SpeechError("realtime", "invalid_value")
	m.SpeechError("live", "server_error")
	m.StreamRefused("invalid_token")
	m.CallEnded(metrics.Call{EndReason: "caller_hangup", Duration: 42 * time.Second, FramesIn: 2100, FramesOut: 900, FramesDropped: 12, InputTokens: 1000, OutputTokens: 400})
	m.CallStarted()
	m.CallEnded(metrics.Call{EndReason: "caller_hangup", Duration: 30 * time.Second, SpeechTime: 30 * time.Second})
	m.Message("inline")
	m.Message("later")
	m.Message("inline")
	m.AssistantReplied(2*time.Second, "")
	m.AssistantReplied(time.Second, "unavailable")
	m.Request("/webhook", 200, 30*time.Millisecond)
	m.Request("/incoming-call", 403, time.Millisecond)

	out := scrape(t, m)
	for _, want := range []string{
		"gateway_calls_active 1",
		`gateway_calls_total{end_reason="caller_hangup"} 2`,
		`gateway_openai_errors_total{api="live",code="server_error"} 1`,
		"gateway_openai_speech_seconds_total 30",
		`gateway_media_streams_refused_total{reason="invalid_token"} 1`,
		"gateway_barge_ins_total 2",
		`gateway_audio_frames_total{direction="caller_to_model"} 2100`,
		`gateway_audio_frames_total{direction="model_to_caller"} 900`,
		`gateway_audio_frames_total{direction="dropped"} 12`,
		"gateway_first_audio_seconds_count 1",
		`gateway_first_audio_seconds_bucket{le="0.3"} 1`,
		`gateway_first_audio_seconds_bucket{le="0.2"} 0`,
		"gateway_call_duration_seconds_sum 72",
		`gateway_openai_errors_total{api="realtime",code="invalid_value"} 1`,
		`gateway_openai_errors_total{api="chat",code="unavailable"} 1`,
		`gateway_openai_tokens_total{kind="input"} 1000`,
		`gateway_openai_tokens_total{kind="output"} 400`,
		`gateway_messages_total{outcome="inline"} 2`,
		`gateway_messages_total{outcome="later"} 1`,
		`gateway_assistant_duration_seconds_count{result="ok"} 1`,
		`gateway_assistant_duration_seconds_count{result="error"} 1`,
		`gateway_http_request_duration_seconds_count{code="200",route="/webhook"} 1`,
		`gateway_http_request_duration_seconds_count{code="403",route="/incoming-call"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		assert.Contains(t, out, want+"", "want %q", want)
	}
}

func TestEachGatewayHasItsOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New() // no duplicate-registration panic
	a.BargeIn()
	assert.Contains(t, scrape(t, a), "gateway_barge_ins_total 1")
	assert.True(t, strings.Contains(scrape(t, b), "gateway_barge_ins_total 0"))
}
