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
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/testlog"
)

// audio returns d milliseconds of mu-law silence, base64-encoded as both
// Twilio and OpenAI carry it.
func audio(d int) []byte {
	return []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, d*domain.BytesPerMs)))
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
	applied   chan ports.CallEvent // marks and key presses queued for the owner
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
		Tokens: k.tokens,
		Speech: k.model,
		Logger: slog.New(slog.NewJSONHandler(k.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Session: ports.SpeechConfig{
			Instructions: "Be brief.", Voice: "alloy", TurnDetection: "server_vad", TranscriptionModel: "whisper",
		},
		Hooks: CallsHooks{CallEnded: func(s CallSummary) { k.summaries <- s }},
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
	a, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallSid: callSid, From: "+15551234567", To: "+15550000000"})
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
	require.NoError(k.t, k.peer.Start(k.ctx, callSid, "MZ1", map[string]string{"token": token}))
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(k.t, err)
	return sess
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

// received waits until the caller received n frames of kind.
func (k *callTest) received(kind string, n int) []porttest.Outbound {
	k.t.Helper()
	got, err := k.peer.WaitReceived(k.ctx, func(o []porttest.Outbound) bool { return count(o, kind) >= n })
	require.NoError(k.t, err, "waiting for %d %s frames", n, kind)
	return got
}

func count(o []porttest.Outbound, kind string) int {
	n := 0
	for _, f := range o {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// play echoes the oldest pending mark and waits until the call applied it.
func (k *callTest) play() {
	k.t.Helper()
	name, err := k.peer.PlayMark(k.ctx)
	require.NoError(k.t, err)
	k.waitApplied(ports.CallMark, name)
}

func (k *callTest) waitApplied(typ ports.CallEventType, value string) {
	k.t.Helper()
	for {
		select {
		case ev := <-k.applied:
			if ev.Type == typ && (ev.Mark == value || ev.Digit == value) {
				return
			}
		case <-k.ctx.Done():
			k.t.Fatalf("the call did not apply %s %q", typ, value)
		}
	}
}

// hangUp sends stop and checks the call ends normally with the speech
// session closed.
func (k *callTest) hangUp(sess *fake.SpeechSession) CallSummary {
	k.t.Helper()
	require.NoError(k.t, k.peer.Stop(k.ctx))
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
		a, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallSid: fmt.Sprintf("CA%d", i), From: tt.from})
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
	a, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallSid: "CA1", From: "anonymous"})
	require.NoError(t, err)
	assert.False(t, a.Reject)
	assert.NotEmpty(t, a.Token)
}

func TestAnswerTokenStoreDown(t *testing.T) {
	k := newCallTest(t, nil)
	k.tokens.Down(ports.ErrUnavailable)
	_, err := k.svc.Answer(k.ctx, ports.IncomingCall{CallSid: "CA1", From: "+15551234567"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Empty(t, k.model.Sessions(), "nothing is pre-warmed for a call that got no token")
}

func TestCallHappyPath(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	cfg := sess.Config()
	assert.Equal(t, "CA1", cfg.CallSid)
	assert.Equal(t, "Be brief.", cfg.Instructions)
	assert.Equal(t, "alloy", cfg.Voice)
	assert.Equal(t, "server_vad", cfg.TurnDetection)
	assert.Equal(t, "whisper", cfg.TranscriptionModel)

	// Caller audio reaches the model in order, untouched.
	var frames [][]byte
	for i := range 50 {
		f := []byte(base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("frame-%03d", i))))
		frames = append(frames, f)
		require.NoError(t, k.peer.Media(k.ctx, int64(20*(i+1)), f))
	}
	got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Audio) >= 50 })
	require.NoError(t, err)
	assert.Equal(t, frames, got.Audio)

	// The caller speaks, then the model answers: each chunk becomes a
	// media frame followed by a mark.
	require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechStarted, ItemID: "c1"}))
	require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechCallerText, ItemID: "c1", Text: "Hello?"}))
	require.NoError(t, sess.Say(k.ctx, "r1", "a1", "Hi, how can I help?", audio(100), audio(60)))
	out := k.received("mark", 2)
	require.Len(t, out, 4)
	assert.Equal(t, "media", out[0].Kind)
	assert.Equal(t, audio(100), out[0].Audio)
	assert.Equal(t, "mark", out[1].Kind)
	assert.Equal(t, "media", out[2].Kind)
	assert.Equal(t, audio(60), out[2].Audio)
	assert.Equal(t, "mark", out[3].Kind)
	k.play()
	k.play()

	require.NoError(t, k.peer.DTMF(k.ctx, "7"))
	k.waitApplied(ports.CallDTMF, "7")

	s := k.hangUp(sess)
	assert.Equal(t, "CA1", s.CallSid)
	assert.Equal(t, "MZ1", s.StreamSid)
	assert.True(t, s.Prewarmed)
	assert.Equal(t, 50, s.FramesIn)
	assert.Equal(t, 2, s.FramesOut)
	assert.Equal(t, "7", s.Digits)
	assert.Zero(t, s.BargeIns)
	assert.Positive(t, s.FirstAudio)
	assert.Positive(t, s.Usage.TotalTokens)
	require.Len(t, s.Turns, 2)
	assert.Equal(t, domain.Turn{Speaker: domain.Caller, ItemID: "c1", Text: "Hello?", StartMs: 1000}, s.Turns[0])
	assert.Equal(t, domain.Turn{Speaker: domain.Assistant, ItemID: "a1", Text: "Hi, how can I help?", StartMs: 1000, SentMs: 160, HeardMs: 160}, s.Turns[1])
	assert.Zero(t, sess.Cancels(), "never a cancel")
	assert.Zero(t, sess.ResponseRequests(), "the caller speaks first by default")
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
		want   porttest.Truncation
		// sent counts the media frames the caller got before the clear.
		sent int
		// late is the response still in progress at the barge-in, whose
		// later audio is refused.
		late, lateItem string
	}{
		{
			name: "mid-item: cut at the last mark played",
			script: func(k *callTest, sess *fake.SpeechSession) {
				inProgress(k, sess, "r1", "a1", audio(100), audio(100), audio(100))
				k.received("mark", 3)
				k.play()
			},
			want: porttest.Truncation{ItemID: "a1", AudioEndMs: 100},
			sent: 3, late: "r1", lateItem: "a1",
		},
		{
			name: "nothing played yet: cut at zero",
			script: func(k *callTest, sess *fake.SpeechSession) {
				inProgress(k, sess, "r1", "a1", audio(240))
				k.received("mark", 1)
			},
			want: porttest.Truncation{ItemID: "a1", AudioEndMs: 0},
			sent: 1, late: "r1", lateItem: "a1",
		},
		{
			name: "two queued responses, the second playing",
			script: func(k *callTest, sess *fake.SpeechSession) {
				require.NoError(t, sess.Say(k.ctx, "r1", "a1", "First.", audio(200), audio(200)))
				inProgress(k, sess, "r2", "a2", audio(300), audio(300), audio(300))
				k.received("mark", 5)
				for range 3 { // a1 whole, then 300 ms of a2
					k.play()
				}
			},
			want: porttest.Truncation{ItemID: "a2", AudioEndMs: 300},
			sent: 5, late: "r2", lateItem: "a2",
		},
		{
			name: "two queued responses, the first still playing",
			script: func(k *callTest, sess *fake.SpeechSession) {
				require.NoError(t, sess.Say(k.ctx, "r1", "a1", "First.", audio(200), audio(200)))
				inProgress(k, sess, "r2", "a2", audio(300))
				k.received("mark", 3)
				k.play()
			},
			want: porttest.Truncation{ItemID: "a1", AudioEndMs: 200},
			sent: 3, late: "r2", lateItem: "a2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCallTest(t, nil)
			sess := k.start("CA1")
			tt.script(k, sess)

			require.NoError(t, sess.StartSpeech(k.ctx, "c1", 0))
			got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Truncations) > 0 })
			require.NoError(t, err)
			assert.Equal(t, []porttest.Truncation{tt.want}, got.Truncations)
			out := k.received("clear", 1)
			assert.Equal(t, tt.sent, count(out, "media"), "the clear follows the audio sent")
			assert.Equal(t, "clear", out[len(out)-1].Kind, "nothing after the clear")

			// Late audio of the response the caller interrupted is
			// dropped; the marks the clear flushed are not counted as heard.
			require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechAudioDelta, ResponseID: tt.late, ItemID: tt.lateItem, Audio: audio(100)}))
			// A new response after the barge-in plays normally.
			require.NoError(t, sess.Say(k.ctx, "r9", "a9", "Yes?", audio(80)))
			out = k.received("media", tt.sent+1)
			assert.Equal(t, tt.sent+1, count(out, "media"), "the late delta was dropped, the new response played")

			s := k.hangUp(sess)
			assert.Equal(t, 1, s.BargeIns)
			assert.Equal(t, 1, s.FramesDropped)
			assert.Zero(t, sess.Cancels(), "the model cancels its own response on speech; the gateway never sends a cancel")
			for _, turn := range s.Turns {
				if turn.ItemID == tt.want.ItemID {
					assert.True(t, turn.Interrupted)
					assert.Equal(t, tt.want.AudioEndMs, turn.HeardMs)
				}
			}
		})
	}
}

// inProgress makes the model start a response and stream chunks of it,
// without finishing it.
func inProgress(k *callTest, sess *fake.SpeechSession, resp, item string, chunks ...[]byte) {
	k.t.Helper()
	require.NoError(k.t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechResponseCreated, ResponseID: resp}))
	for _, c := range chunks {
		require.NoError(k.t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechAudioDelta, ResponseID: resp, ItemID: item, Audio: c}))
	}
}

func TestSpeechWithNothingPlayingSendsNothing(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	require.NoError(t, sess.Say(k.ctx, "r1", "a1", "Hi.", audio(100)))
	k.received("mark", 1)
	k.play()
	require.NoError(t, sess.StartSpeech(k.ctx, "c1", 0))
	require.NoError(t, sess.Say(k.ctx, "r2", "a2", "Sure.", audio(100)))
	k.received("media", 2)
	s := k.hangUp(sess)
	assert.Empty(t, sess.Truncations())
	assert.Zero(t, count(k.peer.Received(), "clear"))
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
				require.NoError(t, k.peer.Start(k.ctx, callSid, "MZ1", map[string]string{"token": token}))
				reason, code, err := k.peer.WaitClosed(k.ctx)
				require.NoError(t, err)
				assert.Equal(t, porttest.ClosePolicy, code, "a token failure is a policy violation (1008)")
				assert.Equal(t, tt.reason, reason)
				err = k.waitServed()
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
			})
		}
	}
}

func TestStreamTokenStoreDown(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.DisablePrewarm = true })
	token := k.answer("CA1")
	k.tokens.Down(fmt.Errorf("redis: %w", ports.ErrUnavailable))
	k.serve()
	require.NoError(t, k.peer.Start(k.ctx, "CA1", "MZ1", map[string]string{"token": token}))
	reason, code, err := k.peer.WaitClosed(k.ctx)
	require.NoError(t, err)
	assert.Equal(t, porttest.CloseNormal, code)
	assert.Equal(t, "token_store_unavailable", reason)
	require.ErrorIs(t, k.waitServed(), ports.ErrUnavailable)
	assert.Empty(t, k.model.Sessions())
}

func TestStreamWithoutStart(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.StartTimeout = 50 * time.Millisecond })
	k.serve()
	require.NoError(t, k.peer.Emit(k.ctx, ports.CallEvent{Type: ports.CallConnected}))
	_, _, err := k.peer.WaitClosed(k.ctx)
	require.NoError(t, err)
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
			require.NoError(t, k.peer.Start(k.ctx, "CA1", "MZ1", map[string]string{"token": token}))
			reason, code, err := k.peer.WaitClosed(k.ctx)
			require.NoError(t, err)
			assert.Equal(t, porttest.CloseNormal, code, "the stream ends, and with it <Connect>: no dead air")
			assert.Equal(t, "model_unavailable", reason)
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
	_, err = k.svc.Answer(k.ctx, ports.IncomingCall{CallSid: "CA3", From: "+15551234567"})
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
			reason, code, err := k.peer.WaitClosed(k.ctx)
			require.NoError(t, err)
			assert.Equal(t, tt.reason, reason, "the caller is not left in dead air: the stream is closed")
			assert.Equal(t, porttest.CloseNormal, code)
			err = k.waitServed()
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
	require.NoError(t, sess.Say(k.ctx, "r1", "a1", "Still here.", audio(20)))
	k.received("media", 1)
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
	require.NoError(t, k.peer.Media(k.ctx, 20, audio(20)))
	reason, _, err := k.peer.WaitClosed(k.ctx)
	require.NoError(t, err)
	assert.Equal(t, "model_failed", reason)
	require.ErrorIs(t, k.waitServed(), ports.ErrUnavailable)
}

func TestCallerSendFailureEndsTheCall(t *testing.T) {
	k := newCallTest(t, nil)
	sess := k.start("CA1")
	k.peer.FailSends(errors.New("broken pipe"))
	_ = sess.Say(k.ctx, "r1", "a1", "Hi.", audio(20), audio(20)) // the call may end before all is emitted
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
	require.NoError(t, k.peer.Start(k.ctx, "CA1", "MZ1", map[string]string{"token": token}))
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(t, err)
	require.NoError(t, sess.Say(k.ctx, "r1", "a1", "Hi.", audio(20)))
	k.received("media", 1)
	cancel()
	require.ErrorIs(t, k.waitServed(), context.Canceled)
	reason, _, err := k.peer.WaitClosed(k.ctx)
	require.NoError(t, err)
	assert.Equal(t, "shutdown", reason)
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
	require.NoError(t, sess.Say(k.ctx, "r1", "a1", "Hi.", audio(20), audio(20)))
	k.received("mark", 2)
	require.NoError(t, sess.StartSpeech(k.ctx, "c1", 0))
	k.received("clear", 1)
	_, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Truncations) == 1 })
	require.NoError(t, err)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return bargeIns == 1 }, wait, time.Millisecond)
	k.hangUp(sess)

	ch, peer := fake.NewTelephony()
	go func() { k.served <- k.svc.Serve(k.ctx, ch) }()
	require.NoError(t, peer.Start(k.ctx, "CA2", "MZ2", map[string]string{"token": "nope"}))
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
