package porttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// SpeechModel runs the conformance suite of ports.SpeechModel. newHarness is
// called once per subtest and returns a model with the peer it talks to;
// subtests run in parallel, each with its own harness.
func SpeechModel(t *testing.T, newHarness func(t *testing.T) SpeechHarness) {
	t.Run("OpenConfig", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		cfg := ports.SpeechConfig{Instructions: unique("You are a test"), CallID: unique("CA")}
		openSpeech(t, h, cfg)
		got, err := within(t, "WaitSession", h.Peer.WaitSession)
		require.NoError(t, err)
		assert.Equal(t, cfg.Instructions, got.Instructions)
	})

	t.Run("Format", func(t *testing.T) {
		t.Parallel()
		_, s := openDefault(t, newHarness)
		f := s.Format()
		assert.Positive(t, f.BytesPerSample(), "a known encoding: %v", f)
		assert.Contains(t, []int{8000, 16000, 24000}, f.SampleRate)
		assert.Contains(t, []ports.Interruptions{ports.InterruptedByGateway, ports.InterruptedByModel}, s.Interruptions())
	})

	t.Run("AudioInOrder", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		const frames = 200
		want := make([][]byte, frames)
		buf := make([]byte, 0, 256) // reused: the session must copy
		for i := range frames {
			buf = append(buf[:0], fmt.Sprintf("frame-%03d-", i)...)
			buf = append(buf, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="...)
			want[i] = append([]byte(nil), buf...)
			require.NoError(t, withinErr(t, "AppendAudio", func(ctx context.Context) error {
				return s.AppendAudio(ctx, buf)
			}))
		}
		eventually(t, "all audio received", func() bool { return len(h.Peer.ReceivedAudio()) >= frames })
		assert.Equal(t, want, h.Peer.ReceivedAudio(), "frames arrive in order, intact, none lost")
	})

	t.Run("RespondReachesPeer", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		require.NoError(t, withinErr(t, "Respond", func(ctx context.Context) error { return s.Respond(ctx, "") }))
		require.NoError(t, withinErr(t, "Respond", func(ctx context.Context) error { return s.Respond(ctx, "Greet the caller") }))
		eventually(t, "requests received", func() bool { return h.Peer.Responds() >= 2 })
		assert.Equal(t, 2, h.Peer.Responds())
	})

	t.Run("Say", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		chunks := [][]byte{[]byte("AAAA"), []byte("//79/Pv6+fg="), []byte("f39/fw==")}
		sayc := peerAsync(t, func(ctx context.Context) error { return h.Peer.Say(ctx, "Hello there", chunks...) })
		u := readUtterance(t, s, len(chunks), "Hello there")
		assert.NotEmpty(t, u.id, "audio names its utterance")
		assert.Equal(t, chunks, u.audio, "audio arrives intact and in order")
		assert.True(t, u.usage.TotalTokens > 0 || u.usage.Duration > 0, "the model's usage is reported: %+v", u.usage)
		require.NoError(t, awaitPeer(t, sayc))
	})

	t.Run("UtterancesAreDistinct", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		var ids []string
		for _, text := range []string{"One.", "Two."} {
			sayc := peerAsync(t, func(ctx context.Context) error { return h.Peer.Say(ctx, text, []byte("AAAA")) })
			ids = append(ids, readUtterance(t, s, 1, text).id)
			require.NoError(t, awaitPeer(t, sayc))
		}
		assert.NotEqual(t, ids[0], ids[1], "a new utterance has a new id")
	})

	t.Run("CallerSpeaks", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.CallerSpeaks(ctx, "Hi, it is me") })
		var text string
		var started bool
		for text != "Hi, it is me" {
			ev := recvSpeech(t, s)
			switch ev.Type {
			case ports.SpeechCallerStarted:
				assert.Empty(t, text, "the start comes before the words")
				started = true
			case ports.SpeechCallerText:
				text = joinText(text, ev)
			}
		}
		require.NoError(t, awaitPeer(t, done))
		if s.Interruptions() == ports.InterruptedByGateway {
			assert.True(t, started, "a session that leaves interruptions to the gateway says when the caller starts")
		} else {
			assert.False(t, started, "a full duplex model says nothing of the caller's speech but its words")
		}
	})

	t.Run("Heard", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		sayc := peerAsync(t, func(ctx context.Context) error {
			return h.Peer.Say(ctx, "A long answer", silence(ports.Mulaw8k, 100), silence(ports.Mulaw8k, 100))
		})
		u := readUtterance(t, s, 2, "A long answer")
		require.NoError(t, awaitPeer(t, sayc))
		require.NoError(t, withinErr(t, "Heard", func(ctx context.Context) error { return s.Heard(ctx, u.id, 40) }))
		if s.Interruptions() == ports.InterruptedByModel {
			assert.Empty(t, h.Peer.Heard(), "a full duplex model is told nothing")
			return
		}
		eventually(t, "heard reported", func() bool { return len(h.Peer.Heard()) >= 1 })
		assert.Equal(t, []peer.Heard{{Utterance: u.id, Ms: 40}}, h.Peer.Heard())
	})

	t.Run("ToolsDeclared", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		cfg := ports.SpeechConfig{Instructions: "You are a test", CallID: unique("CA"), Tools: []ports.ToolSpec{
			{Name: "check_availability", Description: "Free tables.", Parameters: json.RawMessage(`{"type":"object","properties":{"people":{"type":"integer"}},"required":["people"]}`)},
			{Name: "end_call", Description: "Hang up."},
		}}
		openSpeech(t, h, cfg)
		got, err := within(t, "WaitSession", h.Peer.WaitSession)
		require.NoError(t, err)
		require.Len(t, got.Tools, 2, "every tool is declared")
		for i, want := range cfg.Tools {
			assert.Equal(t, want.Name, got.Tools[i].Name)
			assert.Equal(t, want.Description, got.Tools[i].Description)
			if want.Parameters != nil {
				assert.JSONEq(t, string(want.Parameters), string(got.Tools[i].Parameters), "the schema is passed as is")
			}
		}
	})

	t.Run("ToolCall", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		call := ports.ToolCall{ID: unique("call"), Name: "check_availability", Arguments: json.RawMessage(`{"people":2}`)}
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.CallTool(ctx, call) })
		ev := recvSpeechType(t, s, ports.SpeechToolCall)
		require.NoError(t, awaitPeer(t, done))
		assert.Equal(t, call.Name, ev.Tool.Name)
		assert.NotEmpty(t, ev.Tool.ID)
		assert.JSONEq(t, string(call.Arguments), string(ev.Tool.Arguments))
		result := ports.ToolResult{CallID: ev.Tool.ID, Output: `{"tables":3}`}
		require.NoError(t, withinErr(t, "ToolResult", func(ctx context.Context) error { return s.ToolResult(ctx, result) }))
		eventually(t, "the result reaches the model", func() bool { return len(h.Peer.ToolResults()) >= 1 })
		got := h.Peer.ToolResults()[0]
		assert.Equal(t, result.CallID, got.CallID)
		assert.Contains(t, got.Output, `"tables":3`)
	})

	t.Run("NonFatalErrorContinues", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error {
			return h.Peer.Fail(ctx, ports.ModelError{Type: "invalid_request_error", Code: "bad_thing", Message: "bad"})
		})
		ev := recvSpeechType(t, s, ports.SpeechError)
		require.NotNil(t, ev.Err)
		assert.Equal(t, "bad_thing", ev.Err.Code)
		assert.False(t, ev.Err.Fatal)
		require.NoError(t, awaitPeer(t, done))

		require.NoError(t, withinErr(t, "AppendAudio", func(ctx context.Context) error {
			return s.AppendAudio(ctx, []byte("AAAA"))
		}), "the session continues after a non-fatal error")
		done = peerAsync(t, func(ctx context.Context) error { return h.Peer.CallerSpeaks(ctx, "still there") })
		recvSpeechType(t, s, ports.SpeechCallerText)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("FatalErrorEnds", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error {
			return h.Peer.Fail(ctx, ports.ModelError{Type: "server_error", Message: "boom", Fatal: true})
		})
		ev := recvSpeechType(t, s, ports.SpeechError)
		require.NotNil(t, ev.Err)
		requireSpeechEnd(t, s) // Fatal is set only when the protocol says so: the end says it anyway
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("Hangup", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		done := peerAsync(t, h.Peer.Hangup)
		requireSpeechEnd(t, s)
		require.NoError(t, awaitPeer(t, done))
		_, err := within(t, "Recv", s.Recv)
		assert.ErrorIs(t, err, ports.ErrClosed, "Recv after the end")
	})

	t.Run("CloseUnblocksRecv", func(t *testing.T) {
		t.Parallel()
		_, s := openDefault(t, newHarness)
		errc := make(chan error, 1)
		go func() {
			_, err := s.Recv(context.Background())
			errc <- err
		}()
		require.NoError(t, s.Close())
		err := awaitPeer(t, errc)
		require.ErrorIs(t, err, ports.ErrClosed)
	})

	t.Run("CloseTwiceAndAfter", func(t *testing.T) {
		t.Parallel()
		_, s := openDefault(t, newHarness)
		require.NoError(t, s.Close())
		_ = s.Close() // must not panic or block
		steps := map[string]func(ctx context.Context) error{
			"AppendAudio": func(ctx context.Context) error { return s.AppendAudio(ctx, []byte("AAAA")) },
			"Respond":     func(ctx context.Context) error { return s.Respond(ctx, "") },
			"ToolResult":  func(ctx context.Context) error { return s.ToolResult(ctx, ports.ToolResult{CallID: "c1", Output: "x"}) },
			"Recv":        func(ctx context.Context) error { _, err := s.Recv(ctx); return err },
		}
		for name, step := range steps {
			assert.ErrorIs(t, withinErr(t, name, step), ports.ErrClosed, "%s after Close", name)
		}
	})

	t.Run("RecvHonoursContext", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := s.Recv(ctx)
			errc <- err
		}()
		cancel()
		require.ErrorIs(t, awaitPeer(t, errc), context.Canceled)

		// An abandoned Recv does not end the session.
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.CallerSpeaks(ctx, "hello?") })
		recvSpeechType(t, s, ports.SpeechCallerText)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("ConcurrentSends", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		ctx := stepCtx(t)
		const senders, each = 4, 25
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					if err := s.AppendAudio(ctx, fmt.Appendf(nil, "g%d-%03d", g, i)); err != nil {
						t.Errorf("AppendAudio: %v", err)
						return
					}
				}
				if err := s.Respond(ctx, ""); err != nil {
					t.Errorf("Respond: %v", err)
				}
			})
		}
		waitGroup(t, "concurrent sends", &wg)
		eventually(t, "all sends received", func() bool {
			return len(h.Peer.ReceivedAudio()) >= senders*each && h.Peer.Responds() >= senders
		})
		next := make([]int, senders)
		for _, frame := range h.Peer.ReceivedAudio() {
			var g, i int
			_, err := fmt.Sscanf(string(frame), "g%d-%d", &g, &i)
			require.NoError(t, err, "frame %q", frame)
			assert.Equal(t, next[g], i, "frames of one sender stay in order")
			next[g] = i + 1
		}
		assert.Len(t, h.Peer.ReceivedAudio(), senders*each)
		assert.Equal(t, senders, h.Peer.Responds())
	})
}

// utterance is what a session delivered of one assistant utterance.
type utterance struct {
	id    string
	audio [][]byte
	usage ports.Usage
}

// readUtterance reads the events of one utterance the peer says: chunks
// audio chunks, its transcript text, and its usage. Audio must come with
// one utterance id, the transcript's pieces (when named) with the same.
func readUtterance(t *testing.T, s ports.SpeechSession, chunks int, text string) utterance {
	t.Helper()
	var u utterance
	var said string
	for len(u.audio) < chunks || said != text || u.usage == (ports.Usage{}) {
		ev := recvSpeech(t, s)
		switch ev.Type {
		case ports.SpeechAudio:
			if u.id == "" {
				u.id = ev.Utterance
			}
			assert.Equal(t, u.id, ev.Utterance, "one utterance, one id")
			u.audio = append(u.audio, append([]byte(nil), ev.Audio...))
		case ports.SpeechAssistantText:
			if ev.Utterance != "" && u.id != "" {
				assert.Equal(t, u.id, ev.Utterance, "the transcript names the utterance of the audio")
			}
			said = joinText(said, ev)
		case ports.SpeechUsage:
			u.usage = u.usage.Add(ev.Usage)
		}
	}
	return u
}

// joinText adds a transcript event to the text so far: a final one is the
// whole text, a piece continues it.
func joinText(sofar string, ev ports.SpeechEvent) string {
	if ev.Final {
		return ev.Text
	}
	return sofar + ev.Text
}

// openDefault opens a session with a plain configuration and waits until
// the peer has it. The session is closed when the test ends.
func openDefault(t *testing.T, newHarness func(t *testing.T) SpeechHarness) (SpeechHarness, ports.SpeechSession) {
	t.Helper()
	h := newHarness(t)
	s := openSpeech(t, h, ports.SpeechConfig{Instructions: "You are a test", CallID: unique("CA")})
	_, err := within(t, "WaitSession", h.Peer.WaitSession)
	require.NoError(t, err)
	return h, s
}

func openSpeech(t *testing.T, h SpeechHarness, cfg ports.SpeechConfig) ports.SpeechSession {
	t.Helper()
	s, err := within(t, "Open", func(ctx context.Context) (ports.SpeechSession, error) {
		return h.Model.Open(ctx, cfg)
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// recvSpeech returns the next event, failing the test on an error.
func recvSpeech(t *testing.T, s ports.SpeechSession) ports.SpeechEvent {
	t.Helper()
	ev, err := within(t, "Recv", s.Recv)
	require.NoError(t, err)
	return ev
}

// recvSpeechType skips events until one of type typ arrives. Adapters may
// pass on events the suite does not ask for (usage, utterance ends).
func recvSpeechType(t *testing.T, s ports.SpeechSession, typ ports.SpeechEventType) ports.SpeechEvent {
	t.Helper()
	for {
		if ev := recvSpeech(t, s); ev.Type == typ {
			return ev
		}
	}
}

// requireSpeechEnd reads until Recv fails and checks that the failure is
// the end of the session.
func requireSpeechEnd(t *testing.T, s ports.SpeechSession) {
	t.Helper()
	for {
		_, err := within(t, "Recv", s.Recv)
		if err == nil {
			continue
		}
		require.ErrorIs(t, err, ports.ErrClosed)
		var ended *ports.SessionEnded
		require.True(t, errors.As(err, &ended), "the error carries a *ports.SessionEnded: %v", err)
		assert.NotEmpty(t, ended.Reason)
		return
	}
}

// peerAsync runs a peer step in its own goroutine (a peer may block until the
// implementation reads) and returns where its error will arrive.
func peerAsync(t *testing.T, step func(ctx context.Context) error) <-chan error {
	ctx := stepCtx(t)
	errc := make(chan error, 1)
	go func() { errc <- step(ctx) }()
	return errc
}

// awaitPeer waits for the result of peerAsync or of another bounded step.
func awaitPeer(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-t.Context().Done():
		t.Fatal("test ended while waiting")
	case <-afterStep():
		t.Fatalf("step did not finish within %v", stepTimeout+grace)
	}
	return nil
}
