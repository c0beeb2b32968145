package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// callSid returns a realistic Twilio call sid: "CA" and 32 hex digits.
func callSid(n int) string { return fmt.Sprintf("CA%032x", n) }

// refusals records the reasons StreamRefused reports.
type refusals struct {
	mu      sync.Mutex
	reasons []string
}

func (r *refusals) hook(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
}

func (r *refusals) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

// A stream that closes before its start event is a quiet, normal end: it
// is counted as "no_start", no token is looked up and nothing is logged
// as refused.
func TestStreamClosedBeforeStartIsQuiet(t *testing.T) {
	var refused refusals
	k := newCallTest(t, func(d *CallsDeps) { d.Hooks.StreamRefused = refused.hook })
	k.serve()
	require.NoError(t, k.peer.Emit(k.ctx, ports.CallEvent{Type: ports.CallKey, Key: "1"}))
	require.NoError(t, k.peer.Disconnect(k.ctx))
	require.NoError(t, k.waitServed())
	assert.Equal(t, []string{"no_start"}, refused.get(), "counted once, as no_start")
	logs := k.logs.String()
	assert.Contains(t, logs, `"level":"INFO","msg":"media stream ended before its start event"`)
	assert.NotContains(t, logs, "media stream refused")
	assert.NotContains(t, logs, `"level":"WARN"`)
	assert.Empty(t, k.model.Sessions())
}

// A flood of key presses that are not single keys is skipped without
// being stored; valid key presses fill a bounded queue, and what does not
// fit is dropped and counted. The summary stays small.
func TestCallerEventFloodIsBounded(t *testing.T) {
	k := newCallTest(t, nil)
	k.svc.testHookCallerEvent = nil // nobody reads the hook's channel here
	sess := k.start(callSid(1))
	junk := strings.Repeat("9", 60<<10)
	const keys, badKeys = 1000, 300
	for i := range badKeys {
		d := []string{junk, "12", "a", "", "٣"}[i%5]
		require.NoError(t, k.peer.Key(k.ctx, d))
	}
	for range keys {
		require.NoError(t, k.peer.Key(k.ctx, "5"))
	}
	s := k.hangUp(sess)

	// No model event came: the queue was applied once, at the end.
	assert.Equal(t, keys-maxCallerQueue, s.CallerEventsDropped, "what did not fit in the queue")
	assert.Equal(t, badKeys, s.CallerEventsSkipped, "malformed key presses")
	assert.Equal(t, maxCallerQueue, s.DigitCount)
	assert.Equal(t, strings.Repeat("5", domain.MaxDigits), s.Digits)

	logs := k.logs.String()
	assert.NotContains(t, logs, junk[:100], "the junk is never logged")
	assert.LessOrEqual(t, strings.Count(logs, "caller event skipped"), 5, "skipped events are logged at a bounded rate")
	assert.Equal(t, domain.MaxDigits, strings.Count(logs, `"msg":"caller pressed a key"`), "key presses are logged up to MaxDigits")
	line := summaryLine(t, logs)
	assert.Less(t, len(line), 4<<10, "the summary line is small: %d bytes", len(line))
}

// The playback reports of a long answer, all arriving between two model
// events, are all applied: only the latest position matters.
func TestPlaybackOfALongAnswerIsAllApplied(t *testing.T) {
	k := newCallTest(t, nil)
	k.svc.testHookCallerEvent = nil
	sess := k.start(callSid(1))
	const n = 4 * maxCallerQueue
	chunks := make([][]byte, n)
	for i := range chunks {
		chunks[i] = audio(20)
	}
	require.NoError(t, sess.SayAs(k.ctx, "a1", "A long answer.", chunks...))
	k.received(peer.OutAudio, n)
	require.NoError(t, k.peer.PlayOut(k.ctx))
	s := k.hangUp(sess)
	require.Len(t, s.Turns, 1)
	assert.Equal(t, n*20, s.Turns[0].SentMs)
	assert.Equal(t, n*20, s.Turns[0].HeardMs, "every report was applied")
	assert.Zero(t, s.CallerEventsDropped)
	assert.Zero(t, s.CallerEventsSkipped)
}

// The summary carries at most MaxSummaryTurns turns (the last ones), each
// text and utterance name clipped and cleaned, so its log line stays bounded
// whatever the transcripts.
func TestSummaryIsBounded(t *testing.T) {
	k := newCallTest(t, nil)
	k.svc.testHookCallerEvent = nil
	sess := k.start(callSid(1))
	// The worst text for JSON: every byte escaped (control characters would
	// take 6 bytes each, but they are made spaces).
	text := "\x01é" + strings.Repeat(`"\`, 2000)
	const turns = 3 * MaxSummaryTurns
	for i := range turns {
		item := fmt.Sprintf("%03d%s", i, strings.Repeat(`"`, 500))
		require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechCallerText, Utterance: item, Text: text, Final: true}))
	}
	// The model's events are handled in order: once this audio is out, the
	// transcripts are in.
	require.NoError(t, sess.Emit(k.ctx, ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: "a1", Audio: audio(20)}))
	k.received(peer.OutAudio, 1)
	for range 3 * domain.MaxDigits {
		require.NoError(t, k.peer.Key(k.ctx, "#"))
	}
	s := k.hangUp(sess)
	require.Len(t, s.Turns, MaxSummaryTurns)
	assert.Equal(t, turns+1-MaxSummaryTurns, s.TurnsOmitted)
	assert.True(t, strings.HasPrefix(s.Turns[0].Utterance, fmt.Sprintf("%03d", turns+1-MaxSummaryTurns)), "the last turns are kept: %q", s.Turns[0].Utterance[:3])
	assert.Equal(t, "a1", s.Turns[MaxSummaryTurns-1].Utterance)
	for _, turn := range s.Turns[:MaxSummaryTurns-1] {
		assert.LessOrEqual(t, len(turn.Text), MaxTurnText)
		assert.True(t, strings.HasSuffix(turn.Text, "…"))
		assert.True(t, utf8.ValidString(turn.Text))
		assert.NotContains(t, turn.Text, "\x01", "control characters are made spaces")
		assert.LessOrEqual(t, len(turn.Utterance), maxUtterance)
	}
	assert.Len(t, s.Digits, domain.MaxDigits)
	assert.Equal(t, 3*domain.MaxDigits, s.DigitCount)
	line := summaryLine(t, k.logs.String())
	assert.LessOrEqual(t, len(line), 40<<10, "the README's bound of the summary line")
	t.Logf("summary line of the worst case: %d bytes", len(line))
}

// summaryLine returns the "call ended" log line, checking it is JSON
// without the keys pressed (LogDigits is off).
func summaryLine(t *testing.T, logs string) string {
	t.Helper()
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"msg":"call ended"`) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m))
			assert.NotContains(t, m, "digits", "the keys pressed are not logged by default")
			assert.Contains(t, m, "digits_count")
			return line
		}
	}
	t.Fatal("no call summary in the log")
	return ""
}

// refused presents token for callSid on a stream of its own and checks
// that it is refused as invalid.
func (k *callTest) refused(callSid, token string) {
	k.t.Helper()
	ch, tp := fake.NewTelephony()
	go func() { k.served <- k.svc.Serve(k.ctx, ch) }()
	require.NoError(k.t, tp.Start(k.ctx, ports.CallInfo{CallID: callSid, Params: map[string]string{"token": token}}))
	reason, err := tp.WaitEnded(k.ctx)
	require.NoError(k.t, err)
	assert.Equal(k.t, ports.EndRefused, reason, "the token is refused")
	require.ErrorIs(k.t, k.waitServed(), ports.ErrTokenInvalid)
}

// A repeated webhook of a call gets a new token that replaces the earlier
// one, and reuses the call's pre-warmed session: one Open, whatever the
// number of repeats; the earlier tokens are refused; the last connects to
// the pre-warmed session.
func TestRepeatedWebhookReusesThePrewarm(t *testing.T) {
	var refused refusals
	k := newCallTest(t, func(d *CallsDeps) { d.Hooks.StreamRefused = refused.hook })
	sid := callSid(7)
	var tokens []string
	for range 5 {
		tokens = append(tokens, k.answer(sid))
	}
	for i, it := range k.tokens.Issued() {
		assert.Equal(t, i > 0, it.Replaced, "issue %d", i)
	}
	for _, old := range tokens[:4] {
		k.refused(sid, old)
	}
	k.serve()
	k.startStream(sid, tokens[4])
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(t, err)
	s := k.hangUp(sess)
	assert.True(t, s.Prewarmed, "the pre-warmed session survived the refused tokens")
	assert.Len(t, k.model.Sessions(), 1, "one session opened for the call")
	assert.Equal(t, []string{"invalid_token", "invalid_token", "invalid_token", "invalid_token"}, refused.get())
	assert.Equal(t, 4, strings.Count(k.logs.String(), `"prewarm":"reused"`))
}

// Two instances share the token store: a webhook repeated on the second
// does not pre-warm there (the first did). The first token, replaced, is
// refused; the stream connects wherever it lands, to the first's
// pre-warmed session there, or to a session opened on the spot on the
// second.
func TestRepeatedWebhookOnAnotherInstance(t *testing.T) {
	for _, landsOn := range []string{"first", "second"} {
		t.Run("stream lands on the "+landsOn, func(t *testing.T) {
			a := newCallTest(t, func(d *CallsDeps) { d.TokenTTL = 3 * time.Second })
			b := newCallTest(t, func(d *CallsDeps) { d.TokenTTL = 3 * time.Second; d.Tokens = a.tokens })
			sid := callSid(42)
			first := a.answer(sid)
			second := b.answer(sid)
			prewarmed, err := a.model.Session(a.ctx, 0)
			require.NoError(t, err)
			assert.Contains(t, b.logs.String(), `"prewarm":"skipped: answered before"`)

			b.refused(sid, first)

			on := b
			if landsOn == "first" {
				on = a
			}
			on.serve()
			on.startStream(sid, second)
			sess, err := on.model.Session(on.ctx, 0)
			require.NoError(t, err)
			s := on.hangUp(sess)
			if landsOn == "first" {
				assert.True(t, s.Prewarmed, "the first instance's pre-warm serves the new token")
				assert.Empty(t, b.model.Sessions(), "the second instance opened nothing")
			} else {
				assert.False(t, s.Prewarmed)
				assert.Len(t, b.model.Sessions(), 1, "the second instance opened the call's session when its stream came")
				select {
				case <-prewarmed.Done(): // discarded when the token's life ends
				case <-a.ctx.Done():
					t.Fatal("the first instance's pre-warm outlived the call's token")
				}
			}
			assert.Len(t, a.model.Sessions(), 1, "the first instance pre-warmed once")
		})
	}
}

// Opening the session is bounded by OpenTimeout, pre-warmed or not: a
// model that never answers gets the stream closed normally (Twilio then
// plays the apology after <Connect>) long before the token's life.
func TestOpenTimeoutBoundsTheWait(t *testing.T) {
	for _, prewarm := range []bool{true, false} {
		t.Run(fmt.Sprintf("prewarm=%v", prewarm), func(t *testing.T) {
			var refused refusals
			k := newCallTest(t, func(d *CallsDeps) {
				d.DisablePrewarm = !prewarm
				d.OpenTimeout = 100 * time.Millisecond
				d.Hooks.StreamRefused = refused.hook
			})
			k.model.SetOpenDelay(time.Hour) // the handshake never completes
			token := k.answer(callSid(1))
			k.serve()
			started := time.Now()
			k.startStream(callSid(1), token)
			reason := k.waitEnded()
			took := time.Since(started)
			t.Logf("stream ended %v after its start", took)
			assert.Less(t, took, DefaultTokenTTL/2, "ended long before the token's life")
			assert.Equal(t, ports.EndFailed, reason, "not a refusal: Twilio plays the apology")
			require.ErrorIs(t, k.waitServed(), context.DeadlineExceeded)
			assert.Equal(t, []string{"model_unavailable"}, refused.get())
		})
	}
}

// A call whose caller sends no media for StreamIdleTimeout ends, with
// both sides closed; one that keeps sending media does not.
func TestStreamIdleEndsTheCall(t *testing.T) {
	k := newCallTest(t, func(d *CallsDeps) { d.StreamIdleTimeout = time.Second })
	sess := k.start(callSid(1))
	// 2.5 s of media every 20 ms: the call goes on.
	for i := range 125 {
		require.NoError(t, k.peer.Audio(k.ctx, int64(20*(i+1)), audio(20)))
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case s := <-k.summaries:
		t.Fatalf("a call with media ended: %s", s.EndReason)
	default:
	}
	// Then nothing: the stream is idle.
	assert.Equal(t, ports.EndFailed, k.waitEnded())
	<-sess.Done()
	require.Error(t, k.waitServed())
	s := k.summary()
	assert.Equal(t, "stream_idle", s.EndReason)
	assert.Equal(t, 125, s.FramesIn)
	assert.Contains(t, k.logs.String(), `"end_reason":"stream_idle"`)
}

// stallingLine is a TelephonyChannel whose sends block, once stalled,
// until it is closed: a peer that stopped reading.
type stallingLine struct {
	*fake.Telephony
	stalled chan struct{} // closed to stall
	closed  chan struct{}
	once    sync.Once
}

func (l *stallingLine) block() {
	select {
	case <-l.stalled:
		<-l.closed
	default:
	}
}

func (l *stallingLine) Play(ctx context.Context, audio []byte) error {
	l.block()
	return l.Telephony.Play(ctx, audio)
}

func (l *stallingLine) End(reason ports.EndReason) error {
	l.once.Do(func() { close(l.closed) })
	return l.Telephony.End(reason)
}

// stallingModel opens sessions whose AppendAudio blocks, once stalled,
// until the session is closed: a model that stopped reading.
type stallingModel struct {
	*fake.SpeechModel
	stalled chan struct{}
}

type stallingSession struct {
	ports.SpeechSession
	stalled chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (m stallingModel) Open(ctx context.Context, cfg ports.SpeechConfig) (ports.SpeechSession, error) {
	s, err := m.SpeechModel.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &stallingSession{SpeechSession: s, stalled: m.stalled, closed: make(chan struct{})}, nil
}

func (s *stallingSession) AppendAudio(ctx context.Context, audio []byte) error {
	select {
	case <-s.stalled:
		<-s.closed
	default:
	}
	return s.SpeechSession.AppendAudio(ctx, audio)
}

func (s *stallingSession) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.SpeechSession.Close()
}

// A write that blocks (the caller, or the model, stopped reading) ends the
// call within about StreamIdleTimeout, both sides closed, while the caller
// goes on sending media.
func TestStalledWritesEndTheCall(t *testing.T) {
	for _, tt := range []struct{ side, reason string }{{"caller", "stream_stalled"}, {"model", "model_stalled"}} {
		t.Run(tt.side, func(t *testing.T) {
			stall := make(chan struct{})
			k := newCallTest(t, func(d *CallsDeps) {
				d.StreamIdleTimeout = 300 * time.Millisecond
				if tt.side == "model" {
					d.Speech = stallingModel{SpeechModel: d.Speech.(*fake.SpeechModel), stalled: stall}
				}
			})
			line := &stallingLine{Telephony: k.ch, stalled: make(chan struct{}), closed: make(chan struct{})}
			token := k.answer(callSid(1))
			go func() { k.served <- k.svc.Serve(k.ctx, line) }()
			k.startStream(callSid(1), token)
			sess, err := k.model.Session(k.ctx, 0)
			require.NoError(t, err)
			if tt.side == "caller" {
				close(line.stalled)
				go func() { _ = sess.SayAs(k.ctx, "a1", "Hello?", audio(20)) }()
			} else {
				close(stall)
			}
			// The caller keeps sending media (or trying to, once the
			// model's side is stuck): the call is not idle.
			feeding := make(chan struct{})
			go func() {
				defer close(feeding)
				for i := 0; ; i++ {
					select {
					case <-line.closed:
						return
					case <-time.After(20 * time.Millisecond):
					}
					_ = k.peer.Audio(k.ctx, int64(20*i), audio(20))
				}
			}()
			assert.Equal(t, ports.EndFailed, k.waitEnded())
			<-sess.Done()
			require.Error(t, k.waitServed())
			<-feeding
			assert.Equal(t, tt.reason, k.summary().EndReason)
		})
	}
}
