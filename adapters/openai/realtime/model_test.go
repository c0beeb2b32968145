package realtime_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/openai/realtime"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/openairest/contract"
	"github.com/convgateway/gateway/test/sim/realtimesim"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const apiKey = "sk-test-secret-key"

func newSim(t *testing.T, opts realtimesim.Options) (*realtimesim.Server, *realtime.Model, *testlog.Buffer) {
	t.Helper()
	opts.APIKey = apiKey
	sim := realtimesim.New(opts)
	t.Cleanup(sim.Close)
	var logs testlog.Buffer
	model := realtime.New(realtime.Options{
		URL:                sim.URL(),
		APIKey:             apiKey,
		Logger:             slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Voice:              "alloy",
		TurnDetection:      realtime.TurnServerVAD,
		TranscriptionModel: "whisper-1",
	})
	return sim, model, &logs
}

func open(t *testing.T, model *realtime.Model) ports.SpeechSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := model.Open(ctx, ports.SpeechConfig{Instructions: "Be brief.", CallID: "CA1"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

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
		require.ErrorAs(t, err, &ended)
		return ended
	}
}

func TestConformance(t *testing.T) {
	porttest.SpeechModel(t, func(t *testing.T) porttest.SpeechHarness {
		sim, model, _ := newSim(t, realtimesim.Options{})
		return porttest.SpeechHarness{Model: model, Peer: sim}
	})
}

func TestEndReasons(t *testing.T) {
	t.Run("session limit", func(t *testing.T) {
		sim, model, _ := newSim(t, realtimesim.Options{})
		s := open(t, model)
		sess, err := sim.Latest(t.Context())
		require.NoError(t, err)
		hungUp := make(chan error, 1)
		go func() { // the peer's close handshake needs the client to read
			hungUp <- sess.Hangup(t.Context(), websocket.StatusGoingAway, "session expired")
		}()
		ended := recvEnd(t, s)
		require.NoError(t, <-hungUp)
		assert.Equal(t, "session_limit", ended.Reason)
		assert.Equal(t, int(websocket.StatusGoingAway), ended.Code)
	})
	t.Run("fatal error", func(t *testing.T) {
		sim, model, _ := newSim(t, realtimesim.Options{})
		s := open(t, model)
		failed := make(chan error, 1)
		go func() { // the peer's close handshake needs the client to read
			failed <- sim.Fail(t.Context(), ports.ModelError{Type: "server_error", Message: "boom", Fatal: true})
		}()
		assert.Equal(t, "fatal_error", recvEnd(t, s).Reason)
		require.NoError(t, <-failed)
	})
	t.Run("remote close", func(t *testing.T) {
		sim, model, _ := newSim(t, realtimesim.Options{})
		s := open(t, model)
		hungUp := make(chan error, 1)
		go func() { hungUp <- sim.Hangup(t.Context()) }()
		assert.Equal(t, "remote_closed", recvEnd(t, s).Reason)
		require.NoError(t, <-hungUp)
	})
	t.Run("local close", func(t *testing.T) {
		_, model, _ := newSim(t, realtimesim.Options{})
		s := open(t, model)
		require.NoError(t, s.Close())
		assert.Equal(t, "local_close", recvEnd(t, s).Reason)
	})
}

func TestOpenConfiguresSession(t *testing.T) {
	sim, model, _ := newSim(t, realtimesim.Options{})
	s := open(t, model)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	conf, err := sess.WaitConfig(t.Context())
	require.NoError(t, err)
	assert.Equal(t, realtimesim.Config{Instructions: "Be brief.", Voice: "alloy", TurnDetection: "server_vad", TranscriptionModel: "whisper-1"}, conf)
	assert.Equal(t, ports.Mulaw8k, s.Format())
	assert.Equal(t, ports.InterruptedByGateway, s.Interruptions())
}

func TestEventsAreMapped(t *testing.T) {
	sim, model, logs := newSim(t, realtimesim.Options{})
	s := open(t, model)
	ctx := t.Context()
	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	require.NoError(t, sess.StartSpeech(ctx, "item_caller", 120))
	chunk := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x55}, 160))) // 20 ms
	go func() { _ = sess.SayAs(ctx, "resp_1", "item_1", "Hi!", chunk, chunk) }()

	var got []ports.SpeechEvent
	for len(got) == 0 || got[len(got)-1].Type != ports.SpeechUsage {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		ev.Audio = bytes.Clone(ev.Audio)
		got = append(got, ev)
	}
	want := []ports.SpeechEvent{
		{Type: ports.SpeechCallerStarted, Utterance: "item_caller"},
		{Type: ports.SpeechAudio, Utterance: "item_1", Audio: chunk},
		{Type: ports.SpeechAudio, Utterance: "item_1", Audio: chunk},
		{Type: ports.SpeechUtteranceDone, Utterance: "item_1"},
		{Type: ports.SpeechAssistantText, Utterance: "item_1", Text: "Hi!", Final: true},
		{Type: ports.SpeechUsage, Usage: ports.Usage{InputTokens: 10, OutputTokens: 22, TotalTokens: 32}},
	}
	assert.Equal(t, want, got)

	require.NoError(t, sim.CallerSpeaks(ctx, "Hello?"))
	for _, want := range []ports.SpeechEventType{ports.SpeechCallerStarted, ports.SpeechCallerStopped, ports.SpeechCallerText} {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, ev.Type)
		assert.NotEmpty(t, ev.Utterance, "the caller's item")
		if ev.Type == ports.SpeechCallerText {
			assert.Equal(t, "Hello?", ev.Text)
			assert.True(t, ev.Final)
		}
	}

	// Heard within the item's 40 ms of audio is sent as it is; beyond it,
	// it is clamped to the audio the session delivered, which the API
	// accepts. An item the session never heard of goes as it is, and the
	// API's error is a SpeechError (and the first event since: the
	// simulator answers in order, and confirmations are not passed on).
	require.NoError(t, s.Heard(ctx, "item_1", 5))
	require.NoError(t, s.Heard(ctx, "item_1", 500))
	require.NoError(t, s.Heard(ctx, "item_unknown", 5))
	ev, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, ports.SpeechError, ev.Type)
	assert.Equal(t, "item_not_found", ev.Err.Code)
	assert.Equal(t, []peer.Heard{{Utterance: "item_1", Ms: 5}, {Utterance: "item_1", Ms: 40}, {Utterance: "item_unknown", Ms: 5}}, sim.Heard())
	assert.Contains(t, logs.String(), "call_id=CA1", "the session's lines name the call")
	assert.Contains(t, logs.String(), `msg="model error"`)

	require.NoError(t, s.Respond(ctx, ""))
	require.NoError(t, s.Respond(ctx, "Say goodbye."))
	require.Eventually(t, func() bool { return sim.Responds() == 2 }, 5*time.Second, 5*time.Millisecond)
}

// TestErrorsComeAsTheyAre: an error event is returned as it comes, and
// the events after it follow intact; a fatal error is followed by the end
// of the session, which says so (the API marks no error as fatal).
func TestErrorsComeAsTheyAre(t *testing.T) {
	sim, model, _ := newSim(t, realtimesim.Options{})
	s := open(t, model)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	chunks := make([][]byte, 4)
	for i := range chunks {
		chunks[i] = []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 160)))
	}
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		if err := sess.Fail(ctx, ports.ModelError{Type: "invalid_request_error", Code: "bad", Message: "bad"}); err != nil {
			done <- err
			return
		}
		done <- sess.SayAs(ctx, "resp_1", "item_1", "Hi.", chunks...)
	}()
	ev, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, ports.SpeechError, ev.Type)
	for _, want := range chunks {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.SpeechAudio, ev.Type)
		assert.Equal(t, string(want), string(ev.Audio))
	}
	require.NoError(t, <-done)

	failed := make(chan error, 1)
	go func() {
		failed <- sim.Fail(t.Context(), ports.ModelError{Type: "server_error", Message: "boom", Fatal: true})
	}()
	for {
		ev, err = s.Recv(ctx)
		require.NoError(t, err)
		if ev.Type == ports.SpeechError {
			break
		}
	}
	assert.Equal(t, "fatal_error", recvEnd(t, s).Reason)
	require.NoError(t, <-failed)
}

func TestServerEventsMatchSchema(t *testing.T) {
	var mu sync.Mutex
	var events [][]byte
	sim, model, _ := newSim(t, realtimesim.Options{
		OnEvent: func(e []byte) {
			mu.Lock()
			events = append(events, bytes.Clone(e))
			mu.Unlock()
		},
		Auto: &realtimesim.Auto{Transcript: "hello", CallerTranscript: "hi", Silence: 40 * time.Millisecond, ChunkEvery: time.Millisecond},
	})
	s := open(t, model)
	ctx := t.Context()
	require.NoError(t, sim.StartSpeech(ctx, "item_x", 0))
	// Caller speech then silence: the simulator answers on its own.
	voice := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x10}, 160))
	quiet := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160))
	for _, frame := range []string{voice, quiet, quiet, quiet} {
		require.NoError(t, s.AppendAudio(ctx, []byte(frame)))
	}
	var said string
	for {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		if ev.Type == ports.SpeechAudio {
			said = ev.Utterance
		}
		if ev.Type == ports.SpeechUsage {
			break
		}
	}
	require.NoError(t, s.Heard(ctx, said, 10))    // confirmed: conversation.item.truncated
	require.NoError(t, s.Heard(ctx, "item_x", 1)) // the caller's item: an error
	ev, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, ports.SpeechError, ev.Type)
	// A tool call, its result, and the reply that goes on with it.
	call := callTools(t, sim, s, "check_availability")[0]
	require.NoError(t, s.ToolResult(ctx, ports.ToolResult{CallID: call.ID, Output: "3 tables"}))
	recvType(t, s, ports.SpeechAssistantText)

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, e := range events {
		var head struct{ Type string }
		require.NoError(t, json.Unmarshal(e, &head))
		name := serverSchema[head.Type]
		if !assert.NotEmpty(t, name, "schema for %s", head.Type) {
			continue
		}
		seen[head.Type] = true
		assert.NoError(t, contract.Validate(name, e), "%s", e)
	}
	for _, typ := range []string{"session.created", "session.updated", "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
		"conversation.item.input_audio_transcription.completed", "response.created", "response.output_audio.delta",
		"response.output_audio.done", "response.output_audio_transcript.done", "response.done", "conversation.item.truncated", "error",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done",
		"response.output_item.done", "conversation.item.added"} {
		assert.True(t, seen[typ], "the simulator sent %s", typ)
	}
}

// serverSchema names the schema of each server event type the simulator
// sends.
var serverSchema = map[string]string{
	"session.created":                                       "RealtimeServerEventSessionCreated",
	"session.updated":                                       "RealtimeServerEventSessionUpdated",
	"input_audio_buffer.speech_started":                     "RealtimeServerEventInputAudioBufferSpeechStarted",
	"input_audio_buffer.speech_stopped":                     "RealtimeServerEventInputAudioBufferSpeechStopped",
	"conversation.item.input_audio_transcription.completed": "RealtimeServerEventConversationItemInputAudioTranscriptionCompleted",
	"response.created":                                      "RealtimeServerEventResponseCreated",
	"response.output_audio.delta":                           "RealtimeServerEventResponseAudioDelta",
	"response.output_audio.done":                            "RealtimeServerEventResponseAudioDone",
	"response.output_audio_transcript.done":                 "RealtimeServerEventResponseAudioTranscriptDone",
	"response.done":                                         "RealtimeServerEventResponseDone",
	"conversation.item.truncated":                           "RealtimeServerEventConversationItemTruncated",
	"conversation.item.added":                               "RealtimeServerEventConversationItemAdded",
	"response.output_item.added":                            "RealtimeServerEventResponseOutputItemAdded",
	"response.output_item.done":                             "RealtimeServerEventResponseOutputItemDone",
	"response.function_call_arguments.delta":                "RealtimeServerEventResponseFunctionCallArgumentsDelta",
	"response.function_call_arguments.done":                 "RealtimeServerEventResponseFunctionCallArgumentsDone",
	"error":                                                 "RealtimeServerEventError",
}

func TestOpenErrors(t *testing.T) {
	t.Run("bad key is rejected, and never shown", func(t *testing.T) {
		sim, _, _ := newSim(t, realtimesim.Options{})
		var logs testlog.Buffer
		model := realtime.New(realtime.Options{URL: sim.URL(), APIKey: "sk-wrong-secret", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		_, err := model.Open(t.Context(), ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrRejected)
		assert.NotContains(t, err.Error(), "sk-wrong-secret")
		assert.NotContains(t, logs.String(), "sk-wrong-secret")
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := "ws" + strings.TrimPrefix(srv.URL, "http")
		srv.Close()
		_, err := realtime.New(realtime.Options{URL: url, APIKey: apiKey}).Open(t.Context(), ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrUnavailable)
		assert.NotContains(t, err.Error(), apiKey)
		assert.NotContains(t, err.Error(), "\n", "the error goes into a log line")
	})
	t.Run("server error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		defer srv.Close()
		_, err := realtime.New(realtime.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), APIKey: apiKey}).Open(t.Context(), ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrUnavailable)
	})
	t.Run("context ends the handshake", func(t *testing.T) {
		_, model, _ := newSim(t, realtimesim.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := model.Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, context.Canceled)
	})
}

// TestMalformedEventsAreSkipped: malformed events are skipped and logged
// at a bounded rate (a line when they begin, then at most one every few
// seconds), not one line each; the session goes on.
func TestMalformedEventsAreSkipped(t *testing.T) {
	const flood = 5000
	// A hand-written server: configure, then garbage, then a good event.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		if _, _, err := conn.Read(ctx); err != nil { // session.update
			return
		}
		for _, e := range []string{
			`{"type":"session.updated","event_id":"e1","session":{"type":"realtime","object":"realtime.session","id":"s"}}`,
			`not json`, `{"type":`, `[]`, `{"no_type":1}`, `{"type":"response.output_audio.delta","delta":5}`,
			`{"type":"rate_limits.updated","event_id":"e2","rate_limits":[]}`,
			`{"type":"response.done","event_id":"e3","response":{"id":7}}`,
			strings.Repeat("garbage\n", flood),
			`{"type":"input_audio_buffer.speech_started","event_id":"e4","item_id":"i","audio_start_ms":9}`,
		} {
			if strings.HasPrefix(e, "garbage") {
				for _, g := range strings.Split(strings.TrimSpace(e), "\n") {
					if conn.Write(ctx, websocket.MessageText, []byte(g)) != nil {
						return
					}
				}
				continue
			}
			if conn.Write(ctx, websocket.MessageText, []byte(e)) != nil {
				return
			}
		}
		_, _, _ = conn.Read(ctx) // until the client closes
	}))
	defer srv.Close()
	var logs testlog.Buffer
	model := realtime.New(realtime.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), APIKey: apiKey,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	began := time.Now()
	s, err := model.Open(t.Context(), ports.SpeechConfig{})
	require.NoError(t, err)
	defer s.Close()
	ev, err := s.Recv(t.Context())
	require.NoError(t, err)
	took := time.Since(began)
	assert.Equal(t, ports.SpeechEvent{Type: ports.SpeechCallerStarted, Utterance: "i"}, ev)
	lines := strings.Count(logs.String(), "skipped frames")
	t.Logf("%d malformed events in %v: %d log lines", flood+6, took, lines)
	assert.Positive(t, lines)
	assert.LessOrEqual(t, lines, 1+int(took/(5*time.Second)), "at most one line every few seconds")
	assert.Contains(t, logs.String(), "skipped_total=1 ", "the first is logged at once")
	assert.Equal(t, 1, strings.Count(logs.String(), "ignored frame"), "an event the gateway does not use is not skipped")
	require.NoError(t, s.Close())
	assert.Contains(t, logs.String(), fmt.Sprintf("skipped=%d", flood+6), "the end of the session says how many were skipped")
	assert.NotContains(t, logs.String(), apiKey)
}

// BenchmarkAppendAudio measures one caller frame to input_audio_buffer.append
// on a real loopback connection.
func BenchmarkAppendAudio(b *testing.B) {
	sim := realtimesim.New(realtimesim.Options{DropAudio: true})
	b.Cleanup(sim.Close)
	s, err := realtime.New(realtime.Options{URL: sim.URL(), APIKey: apiKey}).Open(b.Context(), ports.SpeechConfig{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	audio := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AppendAudio(ctx, audio); err != nil {
			b.Fatal(err)
		}
	}
}
