package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
	"github.com/convgateway/gateway/test/testlog"
)

// audio returns d milliseconds of mu-law silence, base64-encoded as both
// Twilio and OpenAI carry it.
func audio(d int) []byte {
	return []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, d*8)))
}

// callTest is one call through a CallsService, with fakes on both sides.
type callTest struct {
	t      *testing.T
	ctx    context.Context
	svc    *CallsService
	tokens *fake.TokenStore
	model  *fake.SpeechModel
	ch     *fake.Telephony
	peer   *fake.TelephonyPeer
	logs   *testlog.Buffer

	summaries chan CallSummary
	served    chan error
	applied   chan ports.CallEvent // playback reports and key presses published for the owner
}

func newCallTest(t *testing.T, mod func(*CallsDeps)) *callTest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	k := &callTest{
		t: t, ctx: ctx,
		tokens:    fake.NewTokenStore(),
		model:     fake.NewSpeechModel(),
		logs:      &testlog.Buffer{},
		summaries: make(chan CallSummary, 1),
		served:    make(chan error, 1),
		applied:   make(chan ports.CallEvent, 100),
	}
	d := CallsDeps{
		Tokens:  k.tokens,
		Speech:  k.model,
		Logger:  slog.New(slog.NewJSONHandler(k.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Session: ports.SpeechConfig{Instructions: "Be brief."},
		Hooks:   CallsHooks{CallEnded: func(s CallSummary) { k.summaries <- s }},
	}
	if mod != nil {
		mod(&d)
	}
	k.svc = NewCalls(d)
	k.svc.testHookCallerEvent = func(ev ports.CallEvent) { k.applied <- ev }
	t.Cleanup(func() { require.NoError(t, k.svc.Shutdown(context.Background())) })
	k.ch, k.peer = fake.NewTelephony()
	return k
}

// answer answers an incoming call and returns its token.
func (k *callTest) answer(callSid string) string {
	k.t.Helper()
	a, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallID: callSid, From: "+15551234567", To: "+15550000000"})
	require.NoError(k.t, err)
	require.False(k.t, a.Reject)
	require.NotEmpty(k.t, a.Token)
	return a.Token
}

// serve starts Serve on the call's channel.
func (k *callTest) serve() {
	go func() { k.served <- k.svc.Serve(k.ctx, k.ch) }()
}

// start answers callSid, serves its stream and sends its start event with
// the token; it returns the speech session the call uses.
func (k *callTest) start(callSid string) *fake.SpeechSession {
	k.t.Helper()
	token := k.answer(callSid)
	k.serve()
	k.startStream(callSid, token)
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(k.t, err)
	return sess
}

// startStream sends the start of the call's media with token.
func (k *callTest) startStream(callID, token string) {
	k.t.Helper()
	require.NoError(k.t, k.peer.Start(k.ctx, ports.CallInfo{CallID: callID, Params: map[string]string{"token": token}}))
}

// waitServed waits for Serve to return.
func (k *callTest) waitServed() error {
	k.t.Helper()
	select {
	case err := <-k.served:
		return err
	case <-k.ctx.Done():
		k.t.Fatal("Serve did not return")
		return nil
	}
}

func (k *callTest) summary() CallSummary {
	k.t.Helper()
	select {
	case s := <-k.summaries:
		return s
	case <-k.ctx.Done():
		k.t.Fatal("no call summary")
		return CallSummary{}
	}
}

// received waits until the caller received n of kind.
func (k *callTest) received(kind peer.OutKind, n int) []peer.Outbound {
	k.t.Helper()
	got, err := k.peer.WaitReceived(k.ctx, func(o []peer.Outbound) bool { return peer.Count(o, kind) >= n })
	require.NoError(k.t, err, "waiting for %d %s", n, kind)
	return got
}

// play reports the oldest audio not played yet as played and waits until
// the call published it.
func (k *callTest) play() {
	k.t.Helper()
	pos, err := k.peer.PlayNext(k.ctx)
	require.NoError(k.t, err)
	k.waitPlayed(pos)
}

func (k *callTest) waitPlayed(pos int64) {
	k.t.Helper()
	for {
		select {
		case ev := <-k.applied:
			if ev.Type == ports.CallPlayed && ev.PlayedMs >= pos {
				return
			}
		case <-k.ctx.Done():
			k.t.Fatalf("the call did not publish playback at %d ms", pos)
		}
	}
}

func (k *callTest) waitKey(key string) {
	k.t.Helper()
	for {
		select {
		case ev := <-k.applied:
			if ev.Type == ports.CallKey && ev.Key == key {
				return
			}
		case <-k.ctx.Done():
			k.t.Fatalf("the call did not queue key %q", key)
		}
	}
}

// waitEnded waits until the call's media was ended and returns how.
func (k *callTest) waitEnded() ports.EndReason {
	k.t.Helper()
	reason, err := k.peer.WaitEnded(k.ctx)
	require.NoError(k.t, err)
	return reason
}

// hangUp hangs up and checks the call ends normally with the speech
// session closed.
func (k *callTest) hangUp(sess *fake.SpeechSession) CallSummary {
	k.t.Helper()
	require.NoError(k.t, k.peer.HangUp(k.ctx))
	require.NoError(k.t, k.waitServed())
	select {
	case <-sess.Done():
	case <-k.ctx.Done():
		k.t.Fatal("the speech session was not closed")
	}
	s := k.summary()
	assert.Equal(k.t, "caller_hangup", s.EndReason)
	return s
}

func TestAnswerAllowlist(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) {
		d.AllowedNumbers = []string{"+15551234567", "+44 7700 900123"}
		d.DisablePrewarm = true
	})
	tests := []struct {
		from   string
		reject bool
	}{
		{"+15551234567", false},
		{"+1 (555) 123-4567", false},
		{"15551234567", false},
		{"+447700900123", false},
		{"+15557654321", true},
		{"anonymous", true},
		{"", true},
		{"+266696687", true}, // the id Twilio shows for withheld numbers
	}
	for i, tt := range tests {
		a, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallID: fmt.Sprintf("CA%d", i), From: tt.from})
		require.NoError(t, err, tt.from)
		assert.Equal(t, tt.reject, a.Reject, "from %q", tt.from)
		assert.Equal(t, tt.reject, a.Token == "", "from %q: a token only for an accepted call", tt.from)
	}
	assert.Len(t, k.tokens.Issued(), 4, "rejected calls get no token")
	assert.Empty(t, k.model.Sessions())
	assert.NotContains(t, k.logs.String(), "7654321", "a rejected number is masked in the log")
}

func TestAnswerWithoutAllowlistAcceptsEveryone(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.DisablePrewarm = true })
	a, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallID: "CA1", From: "anonymous"})
	require.NoError(t, err)
	assert.False(t, a.Reject)
	assert.NotEmpty(t, a.Token)
}

func TestAnswerTokenStoreDown(t *testing.T) {
	k := newCallTest(t, nil)
	k.tokens.Down(ports.ErrUnavailable)
	_, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallID: "CA1", From: "+15551234567"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Empty(t, k.model.Sessions(), "nothing is pre-warmed for a call that got no token")
}

func TestCallHappyPath(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	cfg := sess.Config()
	assert.Equal(t, "CA1", cfg.CallID)
	assert.Equal(t, "Be brief.", cfg.Instructions)

	// Caller audio reaches the model in order, untouched.
	var frames [][]byte
	for i := range 50 {
		f := []byte(base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("frame-%03d", i))))
		frames = append(frames, f)
		require.NoError(t, k.peer.Audio(k.ctx, int64(20*(i+1)), f))
	}
	got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Audio) >= 50 })
	require.NoError(t, err)
	assert.Equal(t, frames, got.Audio)

	// The caller speaks, then the model answers: each chunk is played,
	// untouched.
	require.NoError(t, sess.StartSpeech(k.ctx, "c1"))
	require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechCallerText, Utterance: "c1", Text: "Hello?", Final: true}))
	require.NoError(t, sess.SayAs(k.ctx, "a1", "Hi, how can I help?", audio(100), audio(60)))
	out := k.received(peer.OutAudio, 2)
	require.Len(t, out, 2)
	assert.Equal(t, audio(100), out[0].Audio)
	assert.Equal(t, audio(60), out[1].Audio)
	k.play()
	k.play()

	require.NoError(t, k.peer.Key(k.ctx, "7"))
	k.waitKey("7")

	s := k.hangUp(sess)
	assert.Equal(t, "CA1", s.CallID)
	assert.True(t, s.Prewarmed)
	assert.Equal(t, 50, s.FramesIn)
	assert.Equal(t, 2, s.FramesOut)
	assert.Equal(t, "7", s.Digits)
	assert.Zero(t, s.BargeIns)
	assert.Positive(t, s.FirstAudio)
	assert.Positive(t, s.Usage.TotalTokens)
	require.Len(t, s.Turns, 2)
	assert.Equal(t, domain.Turn{Speaker: domain.Caller, Utterance: "c1", Text: "Hello?", StartMs: 1000}, s.Turns[0])
	assert.Equal(t, domain.Turn{Speaker: domain.Assistant, Utterance: "a1", Text: "Hi, how can I help?", StartMs: 1000, SentMs: 160, HeardMs: 160}, s.Turns[1])
	assert.Empty(t, sess.Heards(), "nothing interrupted")
	assert.Zero(t, sess.Responds(), "the caller speaks first by default")
	assert.Len(t, k.model.Sessions(), 1, "the pre-warmed session is the one used")

	logs := k.logs.String()
	assert.Contains(t, logs, `"msg":"call ended"`)
	assert.Contains(t, logs, `"text":"Hi, how can I help?"`, "the summary holds the transcript")
	assert.NotContains(t, logs, k.tokens.Issued()[0].Token, "the token is never logged")
}

func TestBargeIn(t *testing.T) {
	tests := []struct {
		name string
		// script makes the model speak and the caller hear some of it.
		script func(k *callTest, sess *fake.SpeechSession)
		want   peer.Heard
		// sent counts the chunks the caller got before the clear.
		sent int
		// late is the utterance still open at the barge-in, whose later
		// audio is refused.
		late string
	}{
		{
			name: "mid-utterance: cut where playback was",
			script: func(k *callTest, sess *fake.SpeechSession) {
				inProgress(k, sess, "a1", audio(100), audio(100), audio(100))
				k.received(peer.OutAudio, 3)
				k.play()
			},
			want: peer.Heard{Utterance: "a1", Ms: 100},
			sent: 3, late: "a1",
		},
		{
			name: "nothing played yet: cut at zero",
			script: func(k *callTest, sess *fake.SpeechSession) {
				inProgress(k, sess, "a1", audio(240))
				k.received(peer.OutAudio, 1)
			},
			want: peer.Heard{Utterance: "a1", Ms: 0},
			sent: 1, late: "a1",
		},
		{
			name: "two queued utterances, the second playing",
			script: func(k *callTest, sess *fake.SpeechSession) {
				require.NoError(t, sess.SayAs(k.ctx, "a1", "First.", audio(200), audio(200)))
				inProgress(k, sess, "a2", audio(300), audio(300), audio(300))
				k.received(peer.OutAudio, 5)
				for range 3 { // a1 whole, then 300 ms of a2
					k.play()
				}
			},
			want: peer.Heard{Utterance: "a2", Ms: 300},
			sent: 5, late: "a2",
		},
		{
			name: "two queued utterances, the first still playing",
			script: func(k *callTest, sess *fake.SpeechSession) {
				require.NoError(t, sess.SayAs(k.ctx, "a1", "First.", audio(200), audio(200)))
				inProgress(k, sess, "a2", audio(300))
				k.received(peer.OutAudio, 3)
				k.play()
			},
			want: peer.Heard{Utterance: "a1", Ms: 200},
			sent: 3, late: "a2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCallTest(t, nil)
			sess := k.start("CA1")
			tt.script(k, sess)

			require.NoError(t, sess.StartSpeech(k.ctx, "c1"))
			got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Heard) > 0 })
			require.NoError(t, err)
			assert.Equal(t, []peer.Heard{tt.want}, got.Heard)
			out := k.received(peer.OutClear, 1)
			assert.Equal(t, tt.sent, peer.Count(out, peer.OutAudio), "the clear follows the audio sent")
			assert.Equal(t, peer.OutClear, out[len(out)-1].Kind, "nothing after the clear")

			// Late audio of the utterance the caller interrupted is
			// dropped; the audio the clear discarded is not counted as heard.
			require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: tt.late, Audio: audio(100)}))
			// A new utterance after the barge-in plays normally.
			require.NoError(t, sess.SayAs(k.ctx, "a9", "Yes?", audio(80)))
			out = k.received(peer.OutAudio, tt.sent+1)
			assert.Equal(t, tt.sent+1, peer.Count(out, peer.OutAudio), "the late chunk was dropped, the new utterance played")

			s := k.hangUp(sess)
			assert.Equal(t, 1, s.BargeIns)
			assert.Equal(t, 1, s.FramesDropped)
			for _, turn := range s.Turns {
				if turn.Utterance == tt.want.Utterance {
					assert.True(t, turn.Interrupted)
					assert.Equal(t, tt.want.Ms, turn.HeardMs)
				}
			}
		})
	}
}

// inProgress makes the model stream chunks of an utterance, without
// finishing it.
func inProgress(k *callTest, sess *fake.SpeechSession, utterance string, chunks ...[]byte) {
	k.t.Helper()
	for _, c := range chunks {
		require.NoError(k.t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: utterance, Audio: c}))
	}
}

func TestSpeechWithNothingPlayingSendsNothing(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	require.NoError(t, sess.SayAs(k.ctx, "a1", "Hi.", audio(100)))
	k.received(peer.OutAudio, 1)
	k.play()
	require.NoError(t, sess.StartSpeech(k.ctx, "c1"))
	require.NoError(t, sess.SayAs(k.ctx, "a2", "Sure.", audio(100)))
	k.received(peer.OutAudio, 2)
	s := k.hangUp(sess)
	assert.Empty(t, sess.Heards())
	assert.Zero(t, peer.Count(k.peer.Received(), peer.OutClear))
	assert.Zero(t, s.BargeIns)
}

func TestAISpeaksFirst(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) {
		d.AISpeaksFirst = true
		d.Greeting = "Greet the caller warmly."
	})
	sess := k.start("CA1")
	got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Responses) > 0 })
	require.NoError(t, err)
	assert.Equal(t, []string{"Greet the caller warmly."}, got.Responses)
	k.hangUp(sess)
}

func TestStreamTokenFailures(t *testing.T) {
	tests := []struct {
		name   string
		token  func(k *callTest) (token, callSid string)
		reason string
	}{
		{"missing", func(k *callTest) (string, string) { k.answer("CA1"); return "", "CA1" }, "invalid_token"},
		{"wrong", func(k *callTest) (string, string) { k.answer("CA1"); return ports.NewToken(), "CA1" }, "invalid_token"},
		{"other call", func(k *callTest) (string, string) { return k.answer("CA1"), "CA2" }, "invalid_token"},
		{"replayed", func(k *callTest) (string, string) {
			tok := k.answer("CA1")
			require.NoError(k.t, k.tokens.Consume(k.ctx, tok, "CA1"))
			return tok, "CA1"
		}, "invalid_token"},
		{"expired", func(k *callTest) (string, string) {
			tok := k.answer("CA1")
			time.Sleep(60 * time.Millisecond)
			return tok, "CA1"
		}, "expired_token"},
	}
	for _, tt := range tests {
		for _, prewarm := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prewarm=%v", tt.name, prewarm), func(t *testing.T) {
				k := newCallTest(t, func(d *CallsDeps) {
					d.DisablePrewarm = !prewarm
					d.TokenTTL = 50 * time.Millisecond
				})
				token, callSid := tt.token(k)
				k.serve()
				k.startStream(callSid, token)
				assert.Equal(t, ports.EndRefused, k.waitEnded(), "a token failure is a refusal")
				err := k.waitServed()
				assert.True(t, errors.Is(err, ports.ErrTokenInvalid) || errors.Is(err, ports.ErrTokenExpired),
					"Serve reports the token failure: %v", err)
				if prewarm {
					for _, s := range k.model.Sessions() {
						select {
						case <-s.Done():
						case <-k.ctx.Done():
							t.Fatal("a pre-warmed session was left open")
						}
					}
				} else {
					assert.Empty(t, k.model.Sessions(), "no speech session before the token is accepted")
				}
				if token != "" {
					assert.NotContains(t, k.logs.String(), token)
				}
				assert.Contains(t, k.logs.String(), `"reason":"`+tt.reason+`"`)
			})
		}
	}
}

func TestStreamTokenStoreDown(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.DisablePrewarm = true })
	token := k.answer("CA1")
	k.tokens.Down(fmt.Errorf("redis: %w", ports.ErrUnavailable))
	k.serve()
	k.startStream("CA1", token)
	assert.Equal(t, ports.EndFailed, k.waitEnded())
	assert.Contains(t, k.logs.String(), `"reason":"token_store_unavailable"`)
	require.ErrorIs(t, k.waitServed(), ports.ErrUnavailable)
	assert.Empty(t, k.model.Sessions())
}

func TestStreamWithoutStart(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.StartTimeout = 50 * time.Millisecond })
	k.serve()
	require.NoError(t, k.peer.Emit(k.ctx, ports.CallEvent{Type: ports.CallKey, Key: "1"}))
	k.waitEnded()
	require.ErrorIs(t, k.waitServed(), context.DeadlineExceeded)
}

func TestModelUnavailable(t *testing.T) {
	for _, prewarm := range []bool{true, false} {
		t.Run(fmt.Sprintf("prewarm=%v", prewarm), func(t *testing.T) {
			k := newCallTest(t, func(d *CallsDeps) { d.DisablePrewarm = !prewarm })
			// The pre-warm fails, and so does the second try.
			k.model.FailOpen(ports.ErrUnavailable, ports.ErrUnavailable)
			token := k.answer("CA1")
			k.serve()
			k.startStream("CA1", token)
			assert.Equal(t, ports.EndFailed, k.waitEnded(), "the media ends, and with it <Connect>: no dead air")
			assert.Contains(t, k.logs.String(), `"reason":"model_unavailable"`)
			require.ErrorIs(t, k.waitServed(), ports.ErrUnavailable)
		})
	}
}

func TestPrewarmFailureOpensAgain(t *testing.T) {
	k := newCallTest(t, nil)
	k.model.FailOpen(ports.ErrUnavailable)
	sess := k.start("CA1")
	s := k.hangUp(sess)
	assert.False(t, s.Prewarmed)
}

func TestPrewarmWaitsForSlowOpen(t *testing.T) {
	k := newCallTest(t, nil)
	k.model.SetOpenDelay(100 * time.Millisecond)
	sess := k.start("CA1") // the stream arrives while the session is opening
	s := k.hangUp(sess)
	assert.True(t, s.Prewarmed)
	assert.Len(t, k.model.Sessions(), 1)
}

func TestPrewarmDiscardedWhenNoStreamArrives(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.TokenTTL = 50 * time.Millisecond })
	k.answer("CA1")
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(t, err)
	select {
	case <-sess.Done():
	case <-k.ctx.Done():
		t.Fatal("the pre-warmed session outlived its token")
	}
}

func TestShutdownClosesPrewarmedSessions(t *testing.T) {
	k := newCallTest(t, nil)
	k.answer("CA1")
	k.answer("CA2")
	s1, err := k.model.Session(k.ctx, 1)
	require.NoError(t, err)
	require.NoError(t, k.svc.Shutdown(k.ctx))
	for _, s := range append(k.model.Sessions(), s1) {
		select {
		case <-s.Done():
		default:
			t.Fatal("Shutdown left a pre-warmed session open")
		}
	}
	_, err = k.svc.Answer(k.ctx, ports.IncomingCall{CallID: "CA3", From: "+15551234567"})
	assert.ErrorIs(t, err, ports.ErrUnavailable)
}

func TestModelEndsTheCall(t *testing.T) {
	tests := []struct {
		name   string
		end    func(ctx context.Context, s *fake.SpeechSession) error
		reason string
	}{
		{"remote close", func(ctx context.Context, s *fake.SpeechSession) error { return s.Hangup(ctx) }, "model_closed"},
		{"session limit", func(ctx context.Context, s *fake.SpeechSession) error { return s.End(ctx, "session_limit") }, "model_session_limit"},
		{"connection lost", func(ctx context.Context, s *fake.SpeechSession) error { return s.End(ctx, "connection_lost") }, "model_lost"},
		{"fatal error", func(ctx context.Context, s *fake.SpeechSession) error {
			return s.Fail(ctx, ports.ModelError{Type: "server_error", Code: "internal", Message: "boom", Fatal: true})
		}, "model_fatal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var codes []string
			var mu sync.Mutex
			k := newCallTest(t, func(d *CallsDeps) {
				d.Hooks.ModelError = func(code string) { mu.Lock(); codes = append(codes, code); mu.Unlock() }
			})
			sess := k.start("CA1")
			require.NoError(t, tt.end(k.ctx, sess))
			assert.Equal(t, ports.EndFailed, k.waitEnded(), "the caller is not left in dead air: the media is ended")
			err := k.waitServed()
			require.Error(t, err)
			assert.ErrorIs(t, err, ports.ErrClosed)
			s := k.summary()
			assert.Equal(t, tt.reason, s.EndReason)
			assert.Contains(t, k.logs.String(), `"end_reason":"`+tt.reason+`"`)
			if tt.name == "fatal error" {
				mu.Lock()
				assert.Equal(t, []string{"internal"}, codes)
				mu.Unlock()
				assert.Equal(t, 1, s.ModelErrors)
			}
		})
	}
}

func TestNonFatalModelErrorKeepsTheCall(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	require.NoError(t, sess.Fail(k.ctx, ports.ModelError{Type: "invalid_request_error", Code: "bad_thing", Message: "nope"}))
	require.NoError(t, sess.SayAs(k.ctx, "a1", "Still here.", audio(20)))
	k.received(peer.OutAudio, 1)
	s := k.hangUp(sess)
	assert.Equal(t, 1, s.ModelErrors)
}

func TestCallerDisconnectsWithoutStop(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	require.NoError(t, k.peer.Disconnect(k.ctx))
	require.NoError(t, k.waitServed(), "a dropped socket is how a hang-up looks without stop")
	select {
	case <-sess.Done():
	case <-k.ctx.Done():
		t.Fatal("the speech session outlived the stream")
	}
	assert.Equal(t, "stream_closed", k.summary().EndReason)
}

func TestModelSendFailureEndsTheCall(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	sess.FailSends(ports.ErrUnavailable)
	require.NoError(t, k.peer.Audio(k.ctx, 20, audio(20)))
	k.waitEnded()
	require.ErrorIs(t, k.waitServed(), ports.ErrUnavailable)
	assert.Equal(t, "model_failed", k.summary().EndReason)
}

func TestCallerSendFailureEndsTheCall(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	k.peer.FailSends(errors.New("broken pipe"))
	_ = sess.SayAs(k.ctx, "a1", "Hi.", audio(20), audio(20)) // the call may end before all is emitted
	require.Error(t, k.waitServed())
	select {
	case <-sess.Done():
	case <-k.ctx.Done():
		t.Fatal("the speech session outlived the stream")
	}
	assert.Equal(t, "telephony_failed", k.summary().EndReason)
}

func TestCancelEndsTheCall(t *testing.T) {
	k := newCallTest(t, nil)
	token := k.answer("CA1")
	ctx, cancel := context.WithCancel(k.ctx)
	go func() { k.served <- k.svc.Serve(ctx, k.ch) }()
	k.startStream("CA1", token)
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(t, err)
	require.NoError(t, sess.SayAs(k.ctx, "a1", "Hi.", audio(20)))
	k.received(peer.OutAudio, 1)
	cancel()
	require.ErrorIs(t, k.waitServed(), context.Canceled)
	assert.Equal(t, ports.EndFailed, k.waitEnded())
	<-sess.Done()
	assert.Equal(t, "shutdown", k.summary().EndReason)
}

func TestCallHooks(t *testing.T) {
	var mu sync.Mutex
	var started, bargeIns int
	var first []time.Duration
	var refused []string
	k := newCallTest(t, func(d *CallsDeps) {
		d.Hooks.CallStarted = func() { mu.Lock(); started++; mu.Unlock() }
		d.Hooks.BargeIn = func() { mu.Lock(); bargeIns++; mu.Unlock() }
		d.Hooks.FirstAudio = func(d time.Duration) { mu.Lock(); first = append(first, d); mu.Unlock() }
		d.Hooks.StreamRefused = func(r string) { mu.Lock(); refused = append(refused, r); mu.Unlock() }
	})
	sess := k.start("CA1")
	require.NoError(t, sess.SayAs(k.ctx, "a1", "Hi.", audio(20), audio(20)))
	k.received(peer.OutAudio, 2)
	require.NoError(t, sess.StartSpeech(k.ctx, "c1"))
	k.received(peer.OutClear, 1)
	_, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Heard) == 1 })
	require.NoError(t, err)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return bargeIns == 1 }, wait, time.Millisecond)
	k.hangUp(sess)

	ch, tp := fake.NewTelephony()
	go func() { k.served <- k.svc.Serve(k.ctx, ch) }()
	require.NoError(t, tp.Start(k.ctx, ports.CallInfo{CallID: "CA2", Params: map[string]string{"token": "nope"}}))
	require.Error(t, k.waitServed())

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, started)
	assert.Equal(t, 1, bargeIns)
	assert.Len(t, first, 1, "first audio is reported once per call")
	assert.Equal(t, []string{"invalid_token"}, refused)
}

func TestNormalizeNumber(t *testing.T) {
	tests := map[string]string{
		"+15551234567":      "+15551234567",
		" +1 555 123 4567 ": "+15551234567",
		"+1 (555) 123-4567": "+15551234567",
		"1.555.123.4567":    "+15551234567",
		"15551234567":       "+15551234567",
		"anonymous":         "",
		"":                  "",
		"+":                 "",
		"++15551234567":     "",
		"client:alice":      "",
	}
	for in, want := range tests {
		assert.Equal(t, want, normalizeNumber(in), "%q", in)
	}
}

func TestDecodedLen(t *testing.T) {
	for n := range 20 {
		b := []byte(base64.StdEncoding.EncodeToString(make([]byte, n)))
		assert.Equal(t, n, decodedLen(b), "%d bytes", n)
	}
}
