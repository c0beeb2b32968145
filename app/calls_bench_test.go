package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// The doubles below cost nothing per event (no copies, no allocations), so
// that the benchmarks measure the call bridge itself: hand-overs between its
// goroutines, the domain's accounting and the calls into the ports. The
// adapters' own per-frame costs (JSON and WebSocket) have their benchmarks
// in adapters/twilio/mediastream and adapters/openai/realtime.

// benchLine is a TelephonyChannel that yields the start event, then what
// the benchmark feeds it, and reports every Play as played at once
// (playback that takes no time).
type benchLine struct {
	events chan ports.CallEvent
	closed chan struct{}
	once   atomic.Bool
	media  atomic.Int64 // Play calls
	pos    atomic.Int64 // ms played
}

func newBenchLine(token string) *benchLine {
	l := &benchLine{events: make(chan ports.CallEvent, 1024), closed: make(chan struct{})}
	l.events <- ports.CallEvent{Type: ports.CallStarted, Call: ports.CallInfo{CallID: "CAbench", Params: map[string]string{"token": token}}}
	return l
}

func (l *benchLine) Recv(ctx context.Context) (ports.CallEvent, error) {
	select {
	case ev := <-l.events:
		return ev, nil
	case <-l.closed:
		return ports.CallEvent{}, errors.Join(ports.ErrClosed, &ports.SessionEnded{Reason: "local_close"})
	case <-ctx.Done():
		return ports.CallEvent{}, ctx.Err()
	}
}

func (l *benchLine) Format() ports.AudioFormat { return ports.Mulaw8k }

func (l *benchLine) Play(_ context.Context, audio []byte) error {
	l.media.Add(1)
	pos := l.pos.Add(int64(decodedLen(audio) / 8))
	select {
	case l.events <- ports.CallEvent{Type: ports.CallPlayed, PlayedMs: pos}:
	case <-l.closed:
	}
	return nil
}

func (l *benchLine) Clear(context.Context) error { return nil }

func (l *benchLine) Skipped() int { return 0 }

func (l *benchLine) End(ports.EndReason) error {
	if l.once.CompareAndSwap(false, true) {
		close(l.closed)
	}
	return nil
}

// benchModel is a SpeechModel whose one session counts appended audio and
// yields what the benchmark feeds it.
type benchModel struct {
	sess *benchSession
}

func (m *benchModel) Open(context.Context, ports.SpeechConfig) (ports.SpeechSession, error) {
	return m.sess, nil
}

type benchSession struct {
	events   chan ports.SpeechEvent
	closed   chan struct{}
	once     atomic.Bool
	appended atomic.Int64
	want     int64
	done     chan struct{} // closed when want frames were appended
}

func newBenchSession(want int64) *benchSession {
	return &benchSession{events: make(chan ports.SpeechEvent, 1024), closed: make(chan struct{}), want: want, done: make(chan struct{})}
}

func (s *benchSession) AppendAudio(context.Context, []byte) error {
	if s.appended.Add(1) == s.want {
		close(s.done)
	}
	return nil
}

func (s *benchSession) Format() ports.AudioFormat                           { return ports.Mulaw8k }
func (s *benchSession) Interruptions() ports.Interruptions                  { return ports.InterruptedByGateway }
func (s *benchSession) Respond(context.Context, string) error               { return nil }
func (s *benchSession) Heard(context.Context, string, int) error            { return nil }
func (s *benchSession) ToolResult(context.Context, ports.ToolResult) error  { return nil }
func (s *benchSession) Recv(ctx context.Context) (ports.SpeechEvent, error) { return s.recv(ctx) }

func (s *benchSession) recv(ctx context.Context) (ports.SpeechEvent, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.closed:
		return ports.SpeechEvent{}, errors.Join(ports.ErrClosed, &ports.SessionEnded{Reason: "local_close"})
	case <-ctx.Done():
		return ports.SpeechEvent{}, ctx.Err()
	}
}

func (s *benchSession) Close() error {
	if s.once.CompareAndSwap(false, true) {
		close(s.closed)
	}
	return nil
}

// benchCall starts a call on the doubles and returns them with a function
// that ends the call and waits for Serve.
func benchCall(b *testing.B, frames int64) (*benchLine, *benchSession, func()) {
	b.Helper()
	tokens := fake.NewTokenStore()
	sess := newBenchSession(frames)
	// The benchmarks send no caller media while the assistant speaks: no
	// idle timeout however long they run.
	svc := NewCalls(CallsDeps{Tokens: tokens, Speech: &benchModel{sess: sess}, DisablePrewarm: true, StreamIdleTimeout: time.Hour})
	token, _, err := tokens.Issue(context.Background(), "CAbench", DefaultTokenTTL)
	if err != nil {
		b.Fatal(err)
	}
	line := newBenchLine(token)
	served := make(chan error, 1)
	go func() { served <- svc.Serve(context.Background(), line) }()
	return line, sess, func() {
		line.events <- ports.CallEvent{Type: ports.CallHungUp}
		<-served
		_ = svc.Shutdown(context.Background())
	}
}

// BenchmarkCallerFrame is one caller media frame through the bridge, from
// the telephony channel's Recv to the speech session's AppendAudio.
func BenchmarkCallerFrame(b *testing.B) {
	line, sess, end := benchCall(b, int64(b.N))
	defer end()
	frame := ports.CallEvent{Type: ports.CallAudio, Audio: audio(20)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		frame.MediaMs = int64(20 * (i + 1))
		line.events <- frame
	}
	<-sess.done
}

// BenchmarkAssistantChunk is one assistant audio chunk through the bridge:
// from the speech session's Recv, through the domain's accounting, to Play
// on the telephony channel, and the playback report back into the
// accounting.
func BenchmarkAssistantChunk(b *testing.B) {
	line, sess, end := benchCall(b, -1)
	defer end()
	delta := ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: "item_1", Audio: audio(20)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sess.events <- delta
	}
	for line.media.Load() < int64(b.N) {
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkBargeIn is the barge-in decision in a call under way: the
// caller starts speaking while five chunks of assistant audio are
// outstanding and one has played. Setting up the calls (handing the audio,
// reporting playback) is not timed; it is done for a batch of calls at a
// time, because stopping the timer is far dearer than the decision.
func BenchmarkBargeIn(b *testing.B) {
	const batch = 1024
	type playing struct {
		conv *domain.Conversation
		pos  int64 // the end of its playback timeline
	}
	calls := make([]playing, batch)
	prepare := func(c *playing) {
		c.conv.UtteranceDone("item_1") // the last round's cut utterance ended
		for range 6 {
			c.conv.AssistantAudio("item_1", 20)
		}
		c.conv.Played(c.pos + 20) // one chunk played
		c.pos += 120
	}
	for i := range calls {
		calls[i].conv = domain.NewConversation()
		prepare(&calls[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		for i := range n {
			if _, cut := calls[i].conv.CallerStartedSpeaking("item_caller"); !cut {
				b.Fatal("no barge-in")
			}
		}
		done += n
		b.StopTimer()
		for i := range n {
			prepare(&calls[i])
		}
		b.StartTimer()
	}
}
