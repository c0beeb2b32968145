package porttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// SpeechModel runs the conformance suite of ports.SpeechModel. newHarness is
// called once per subtest and returns a model with the peer it talks to;
// subtests run in parallel, each with its own harness.
func SpeechModel(t *testing.T, newHarness func(t *testing.T) SpeechHarness) {
	t.Run("OpenConfig", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		cfg := ports.SpeechConfig{
			Instructions:       unique("You are a test"),
			Voice:              "alloy",
			TurnDetection:      "semantic_vad",
			TranscriptionModel: "gpt-4o-transcribe",
			CallSid:            unique("CA"),
		}
		openSpeech(t, h, cfg)
		got, err := within(t, "WaitSession", h.Peer.WaitSession)
		require.NoError(t, err)
		assert.Equal(t, cfg.Instructions, got.Instructions)
		assert.Equal(t, cfg.Voice, got.Voice)
		assert.Equal(t, cfg.TurnDetection, got.TurnDetection)
		assert.Equal(t, cfg.TranscriptionModel, got.TranscriptionModel)
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

	t.Run("CommandsReachPeer", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		text := unique("hello")
		require.NoError(t, withinErr(t, "SendText", func(ctx context.Context) error { return s.SendText(ctx, text) }))
		require.NoError(t, withinErr(t, "RequestResponse", func(ctx context.Context) error { return s.RequestResponse(ctx, "") }))
		require.NoError(t, withinErr(t, "RequestResponse", func(ctx context.Context) error { return s.RequestResponse(ctx, "Greet the caller") }))
		require.NoError(t, withinErr(t, "Truncate", func(ctx context.Context) error { return s.Truncate(ctx, "item_1", 1234) }))
		require.NoError(t, withinErr(t, "Cancel", s.Cancel))
		eventually(t, "commands received", func() bool {
			return len(h.Peer.ReceivedTexts()) >= 1 && h.Peer.ResponseRequests() >= 2 &&
				len(h.Peer.Truncations()) >= 1 && h.Peer.Cancels() >= 1
		})
		assert.Equal(t, []string{text}, h.Peer.ReceivedTexts())
		assert.Equal(t, 2, h.Peer.ResponseRequests())
		assert.Equal(t, []Truncation{{ItemID: "item_1", AudioEndMs: 1234}}, h.Peer.Truncations())
		assert.Equal(t, 1, h.Peer.Cancels())
	})

	t.Run("Say", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		chunks := [][]byte{[]byte("AAAA"), []byte("//79/Pv6+fg="), []byte("f39/fw==")}
		sayc := peerAsync(t, func(ctx context.Context) error {
			return h.Peer.Say(ctx, "resp_1", "item_1", "Hello there", chunks...)
		})
		var audio [][]byte
		var sawCreated, sawText bool
		for {
			ev := recvSpeech(t, s)
			switch ev.Type {
			case ports.SpeechResponseCreated:
				assert.Equal(t, "resp_1", ev.ResponseID)
				assert.Empty(t, audio, "response.created comes before audio")
				sawCreated = true
			case ports.SpeechAudioDelta:
				assert.Equal(t, "item_1", ev.ItemID)
				assert.False(t, sawText, "audio comes before the transcript")
				audio = append(audio, append([]byte(nil), ev.Audio...))
			case ports.SpeechAssistantText:
				assert.Equal(t, "item_1", ev.ItemID)
				assert.Equal(t, "Hello there", ev.Text)
				sawText = true
			case ports.SpeechResponseDone:
				assert.Equal(t, "resp_1", ev.ResponseID)
				assert.Positive(t, ev.Usage.TotalTokens, "response.done carries usage")
				assert.True(t, sawCreated, "response.created was delivered")
				assert.True(t, sawText, "the transcript was delivered")
				assert.Equal(t, chunks, audio, "audio deltas arrive intact and in order")
				require.NoError(t, awaitPeer(t, sayc))
				return
			}
		}
	})

	t.Run("StartSpeech", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.StartSpeech(ctx, "item_caller", 320) })
		ev := recvSpeechType(t, s, ports.SpeechStarted)
		assert.Equal(t, 320, ev.AudioStartMs)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("NonFatalErrorContinues", func(t *testing.T) {
		t.Parallel()
		h, s := openDefault(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error {
			return h.Peer.Fail(ctx, ports.ModelError{Type: "invalid_request_error", Code: "item_truncate_invalid", Message: "bad"})
		})
		ev := recvSpeechType(t, s, ports.SpeechError)
		require.NotNil(t, ev.Err)
		assert.Equal(t, "item_truncate_invalid", ev.Err.Code)
		assert.False(t, ev.Err.Fatal)
		require.NoError(t, awaitPeer(t, done))

		require.NoError(t, withinErr(t, "AppendAudio", func(ctx context.Context) error {
			return s.AppendAudio(ctx, []byte("AAAA"))
		}), "the session continues after a non-fatal error")
		done = peerAsync(t, func(ctx context.Context) error { return h.Peer.StartSpeech(ctx, "item_2", 40) })
		recvSpeechType(t, s, ports.SpeechStarted)
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
		requireSpeechEnd(t, s)
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
			"AppendAudio":     func(ctx context.Context) error { return s.AppendAudio(ctx, []byte("AAAA")) },
			"SendText":        func(ctx context.Context) error { return s.SendText(ctx, "hi") },
			"RequestResponse": func(ctx context.Context) error { return s.RequestResponse(ctx, "") },
			"Truncate":        func(ctx context.Context) error { return s.Truncate(ctx, "item_1", 10) },
			"Cancel":          s.Cancel,
			"Recv":            func(ctx context.Context) error { _, err := s.Recv(ctx); return err },
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
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.StartSpeech(ctx, "item_1", 0) })
		recvSpeechType(t, s, ports.SpeechStarted)
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
				if err := s.SendText(ctx, fmt.Sprintf("text %d", g)); err != nil {
					t.Errorf("SendText: %v", err)
				}
			})
		}
		waitGroup(t, "concurrent sends", &wg)
		eventually(t, "all sends received", func() bool {
			return len(h.Peer.ReceivedAudio()) >= senders*each && len(h.Peer.ReceivedTexts()) >= senders
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
		assert.Len(t, h.Peer.ReceivedTexts(), senders)
	})
}

// openDefault opens a session with a plain configuration and waits until
// the peer has it. The session is closed when the test ends.
func openDefault(t *testing.T, newHarness func(t *testing.T) SpeechHarness) (SpeechHarness, ports.SpeechSession) {
	t.Helper()
	h := newHarness(t)
	s := openSpeech(t, h, ports.SpeechConfig{
		Instructions:  "You are a test",
		Voice:         "alloy",
		TurnDetection: "server_vad",
		CallSid:       unique("CA"),
	})
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
// pass on events the suite does not ask for (session updates, audio done).
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
