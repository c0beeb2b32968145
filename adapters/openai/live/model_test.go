package live_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
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

func TestOpenRefusals(t *testing.T) {
	ctx := t.Context()
	t.Run("bad key", func(t *testing.T) {
		sim, _, _ := newSim(t, livesim.Options{})
		_, err := live.New(live.Options{URL: sim.URL(), APIKey: "sk-wrong-key", BackendModel: "m"}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrRejected)
		assert.Contains(t, err.Error(), "401")
		assert.NotContains(t, err.Error(), "sk-wrong-key")
	})
	t.Run("server error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		_, err := live.New(live.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), APIKey: apiKey, BackendModel: "m"}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrUnavailable)
		assert.NotContains(t, err.Error(), apiKey)
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := "ws" + strings.TrimPrefix(srv.URL, "http")
		srv.Close()
		_, err := live.New(live.Options{URL: url, APIKey: apiKey, BackendModel: "m"}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrUnavailable)
	})
	t.Run("no backend model", func(t *testing.T) {
		sim, _, _ := newSim(t, livesim.Options{})
		_, err := live.New(live.Options{URL: sim.URL(), APIKey: apiKey}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrRejected)
		assert.Empty(t, sim.Sessions(), "refused before dialling")
	})
	t.Run("query string", func(t *testing.T) {
		sim, _, _ := newSim(t, livesim.Options{})
		_, err := live.New(live.Options{URL: sim.URL() + "?model=gpt-live-1", APIKey: apiKey, BackendModel: "m"}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrRejected)
		assert.Empty(t, sim.Sessions(), "refused before dialling")
	})
	t.Run("configuration refused", func(t *testing.T) {
		url := fakeServer(t, func(ctx context.Context, c *websocket.Conn) {
			_, _, _ = c.Read(ctx) // session.start
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"Unknown parameter: 'session.voice'.","param":"session.voice"}}`))
			_, _, _ = c.Read(ctx)
		})
		_, err := live.New(live.Options{URL: url, APIKey: apiKey, BackendModel: "m"}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrRejected)
		assert.Contains(t, err.Error(), "unknown_parameter")
	})
	t.Run("closed before starting", func(t *testing.T) {
		url := fakeServer(t, func(ctx context.Context, c *websocket.Conn) {
			_, _, _ = c.Read(ctx)
			_ = c.Close(websocket.StatusInternalError, "")
		})
		_, err := live.New(live.Options{URL: url, APIKey: apiKey, BackendModel: "m"}).Open(ctx, ports.SpeechConfig{})
		require.ErrorIs(t, err, ports.ErrUnavailable)
	})
	t.Run("no session.started in time", func(t *testing.T) {
		url := fakeServer(t, func(ctx context.Context, c *websocket.Conn) {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		})
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := live.New(live.Options{URL: url, APIKey: apiKey, BackendModel: "m"}).Open(short, ports.SpeechConfig{})
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// fakeServer serves one WebSocket handler on loopback, for answers the
// simulator does not give; it returns the URL.
func fakeServer(t *testing.T, handle func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		handle(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + livesim.Path
}

func TestSessionStart(t *testing.T) {
	sim, model, _ := newSim(t, livesim.Options{})
	open(t, model)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	assert.Equal(t, livesim.Config{Model: "gpt-live-1", Instructions: "Be brief.", Voice: "marin",
		Format: "audio/pcmu@8000", Delegation: "responses", BackendModel: "gpt-5.5"}, sess.Config())
}

func TestEventsAreMapped(t *testing.T) {
	sim, model, _ := newSim(t, livesim.Options{})
	s := open(t, model)
	ctx := t.Context()
	chunk := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x10}, 160)))
	require.NoError(t, s.Respond(ctx, "Greet the caller."))
	go func() {
		_ = sim.Say(ctx, "Hi there", chunk, chunk)
		_ = sim.CallerSpeaks(ctx, "Hello")
		_ = sim.Say(ctx, "Yes?", chunk) // after the caller: no pause
	}()
	var got []ports.SpeechEvent
	for len(got) < 9 {
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		ev.Audio = bytes.Clone(ev.Audio)
		if ev.Type == ports.SpeechUsage {
			assert.Positive(t, ev.Usage.Duration)
			ev.Usage = ports.Usage{}
		}
		got = append(got, ev)
	}
	assert.Equal(t, []ports.SpeechEvent{
		{Type: ports.SpeechAudio, Utterance: "u1", Audio: chunk},
		{Type: ports.SpeechAudio, Utterance: "u1", Audio: chunk},
		{Type: ports.SpeechAssistantText, Utterance: "u1", Text: "Hi "},
		{Type: ports.SpeechAssistantText, Utterance: "u1", Text: "there"},
		{Type: ports.SpeechUsage},
		{Type: ports.SpeechCallerText, Text: "Hello"},
		{Type: ports.SpeechAudio, Utterance: "u2", Audio: chunk},
		{Type: ports.SpeechAssistantText, Utterance: "u2", Text: "Yes?"},
		{Type: ports.SpeechUsage},
	}, got)
	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sess.Commentaries() == 1 }, 5*time.Second, time.Millisecond)
	cmds := sess.Commands()
	require.Len(t, cmds, 2) // session.start, session.commentary.append
	assert.Contains(t, string(cmds[1]), `"delegation_id":null`)
}

func TestEndReasons(t *testing.T) {
	ctx := t.Context()
	t.Run("hangup", func(t *testing.T) {
		sim, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		done := make(chan error, 1)
		go func() { done <- sim.Hangup(ctx) }()
		assert.Equal(t, "remote_closed", recvEnd(t, s).Reason)
		require.NoError(t, <-done)
	})
	t.Run("session limit, final usage first", func(t *testing.T) {
		sim, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		sess, err := sim.Latest(ctx)
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond) // some session time to bill
		done := make(chan error, 1)
		go func() { done <- sess.Hangup(ctx, "expired") }()
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		assert.Equal(t, ports.SpeechUsage, ev.Type)
		assert.Positive(t, ev.Usage.Duration)
		assert.Equal(t, "session_limit", recvEnd(t, s).Reason)
		require.NoError(t, <-done)
	})
	t.Run("fatal error the adapter knows", func(t *testing.T) {
		sim, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		done := make(chan error, 1)
		go func() {
			done <- sim.Fail(ctx, ports.ModelError{Type: "invalid_request_error", Code: "insufficient_quota", Message: "pay", Fatal: true})
		}()
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.SpeechError, ev.Type)
		assert.True(t, ev.Err.Fatal)
		assert.Equal(t, "fatal_error", recvEnd(t, s).Reason)
		require.NoError(t, <-done)
	})
	t.Run("close right after an error", func(t *testing.T) {
		sim, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		done := make(chan error, 1)
		go func() {
			done <- sim.Fail(ctx, ports.ModelError{Type: "invalid_request_error", Code: "odd", Message: "m", Fatal: true})
		}()
		ev, err := s.Recv(ctx)
		require.NoError(t, err)
		assert.False(t, ev.Err.Fatal, "nothing in the error says so")
		assert.Equal(t, "fatal_error", recvEnd(t, s).Reason)
		require.NoError(t, <-done)
	})
	t.Run("connection lost", func(t *testing.T) {
		sim, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		sim.Close() // no close frame
		assert.Equal(t, "connection_lost", recvEnd(t, s).Reason)
	})
	t.Run("local close", func(t *testing.T) {
		_, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		require.NoError(t, s.Close())
		assert.Equal(t, "local_close", recvEnd(t, s).Reason)
	})
}

func TestCloseSaysGoodbye(t *testing.T) {
	t.Run("nobody receiving", func(t *testing.T) {
		sim, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		sess, err := sim.Latest(t.Context())
		require.NoError(t, err)
		require.NoError(t, s.Close())
		cmds := sess.Commands()
		require.NotEmpty(t, cmds)
		assert.JSONEq(t, `{"type":"session.close"}`, string(cmds[len(cmds)-1]))
		<-sess.Done() // the socket is closed
		assert.ErrorIs(t, s.AppendAudio(t.Context(), []byte("AAAA")), ports.ErrClosed)
		assert.ErrorIs(t, s.Heard(t.Context(), "u1", 10), ports.ErrClosed)
	})
	t.Run("while a Recv runs", func(t *testing.T) {
		_, model, _ := newSim(t, livesim.Options{})
		s := open(t, model)
		ended := make(chan *ports.SessionEnded, 1)
		go func() { ended <- recvEnd(t, s) }()
		time.Sleep(10 * time.Millisecond) // let it block
		require.NoError(t, s.Close())
		assert.Equal(t, "local_close", (<-ended).Reason)
	})
	t.Run("no session.closed", func(t *testing.T) {
		closes := make(chan string, 1)
		url := fakeServer(t, func(ctx context.Context, c *websocket.Conn) {
			_, _, _ = c.Read(ctx)
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"session.started","event_id":"e","session":{"id":"s","expires_at":1,"model":"gpt-live-1"}}`))
			_, b, _ := c.Read(ctx) // session.close, never answered
			closes <- string(b)
			_, _, _ = c.Read(ctx)
		})
		s, err := live.New(live.Options{URL: url, APIKey: apiKey, BackendModel: "m"}).Open(t.Context(), ports.SpeechConfig{})
		require.NoError(t, err)
		require.NoError(t, s.Close(), "the socket is closed after CloseWait")
		assert.JSONEq(t, `{"type":"session.close"}`, <-closes)
	})
}

func TestBadFramesAreSkipped(t *testing.T) {
	sim, model, logs := newSim(t, livesim.Options{})
	s := open(t, model)
	ctx := t.Context()
	sess, err := sim.Latest(ctx)
	require.NoError(t, err)
	for _, bad := range []string{`not json`, `{"type":"session.output_audio.delta"}`, `{"no":"type"}`, `{"type":"session.brand_new"}`} {
		require.NoError(t, sess.Raw(ctx, []byte(bad)))
	}
	require.NoError(t, sim.CallerSpeaks(ctx, "still here"))
	ev, err := s.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechEvent{Type: ports.SpeechCallerText, Text: "still "}, ev, "bad frames skipped, the session goes on")
	assert.Contains(t, logs.String(), "skipped frames")
	assert.NotContains(t, logs.String(), apiKey)
}

func TestReadLimit(t *testing.T) {
	sim, model, _ := newSim(t, livesim.Options{})
	s := open(t, model)
	sess, err := sim.Latest(t.Context())
	require.NoError(t, err)
	big := `{"type":"session.output_transcript.delta","event_id":"e","start_ms":0,"end_ms":1,"delta":"` + strings.Repeat("a", live.ReadLimit) + `"}`
	go func() { _ = sess.Raw(t.Context(), []byte(big)) }()
	assert.Equal(t, "message_too_big", recvEnd(t, s).Reason)
}
