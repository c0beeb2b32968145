package fake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

var (
	_ ports.SpeechModel   = (*SpeechModel)(nil)
	_ ports.SpeechSession = (*SpeechSession)(nil)
	_ peer.Speech         = SpeechPeer{}
)

// SpeechModel is a fake ports.SpeechModel. Every Open creates a
// SpeechSession that the test drives as the model's side: it makes the
// model speak (Say, Emit ...) and inspects what the client sent (Sent,
// WaitSent). Create one with NewSpeechModel.
type SpeechModel struct {
	mu       sync.Mutex
	sessions []*SpeechSession
	openErrs queue[error]
	delay    time.Duration
	format   ports.AudioFormat
	mode     ports.Interruptions
	changed  changes
}

// NewSpeechModel returns a model whose Open succeeds at once, whose
// sessions speak mu-law at 8 kHz and leave interruptions to the gateway
// (as OpenAI Realtime does).
func NewSpeechModel() *SpeechModel { return &SpeechModel{format: ports.Mulaw8k} }

// NewFullDuplexModel returns a model whose sessions handle interruptions
// themselves (ports.InterruptedByModel, as OpenAI GPT-Live does): their
// CallerSpeaks reports only the caller's words.
func NewFullDuplexModel() *SpeechModel {
	return &SpeechModel{format: ports.Mulaw8k, mode: ports.InterruptedByModel}
}

// SetFormat sets the audio format of the sessions opened later.
func (m *SpeechModel) SetFormat(f ports.AudioFormat) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.format = f
}

// Open creates a session configured with cfg. It waits for the delay set
// with SetOpenDelay (or until ctx is done), and fails with the next error
// queued by FailOpen.
func (m *SpeechModel) Open(ctx context.Context, cfg ports.SpeechConfig) (ports.SpeechSession, error) {
	m.mu.Lock()
	delay, format, mode := m.delay, m.format, m.mode
	err, failed := m.openErrs.pop()
	m.mu.Unlock()
	if err := sleep(ctx, delay); err != nil {
		return nil, fmt.Errorf("fake: open speech: %w", err)
	}
	if err := errCheck(ctx, "open speech"); err != nil {
		return nil, err
	}
	if failed {
		return nil, fmt.Errorf("fake: open speech: %w", err)
	}
	s := &SpeechSession{cfg: cfg, format: format, mode: mode, st: newStream[ports.SpeechEvent](), opened: time.Now()}
	m.mu.Lock()
	m.sessions = append(m.sessions, s)
	m.mu.Unlock()
	m.changed.notify()
	return s, nil
}

// FailOpen makes the next Open calls fail with errs, in order (for example
// ports.ErrUnavailable).
func (m *SpeechModel) FailOpen(errs ...error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.openErrs.push(errs...)
}

// SetOpenDelay makes every later Open take d (the remote handshake).
func (m *SpeechModel) SetOpenDelay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delay = d
}

// Sessions returns the sessions opened so far, oldest first.
func (m *SpeechModel) Sessions() []*SpeechSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sessions)
}

// Session blocks until the i-th session (from 0) has been opened and
// returns it, or returns an error when ctx ends first.
func (m *SpeechModel) Session(ctx context.Context, i int) (*SpeechSession, error) {
	var s *SpeechSession
	err := m.changed.until(ctx, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if i < len(m.sessions) {
			s = m.sessions[i]
		}
		return s != nil
	})
	return s, err
}

// latest blocks until a session is open and returns the newest.
func (m *SpeechModel) latest(ctx context.Context) (*SpeechSession, error) {
	var s *SpeechSession
	err := m.changed.until(ctx, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if n := len(m.sessions); n > 0 {
			s = m.sessions[n-1]
		}
		return s != nil
	})
	return s, err
}

// Peer returns the model's side as a peer.Speech acting on the session
// opened most recently.
func (m *SpeechModel) Peer() SpeechPeer { return SpeechPeer{m: m} }

// SpeechSent is what a client sent to a fake speech session.
type SpeechSent struct {
	Audio       [][]byte           // AppendAudio chunks, in order
	Responses   []string           // the instructions of each Respond
	Heard       []peer.Heard       // Heard reports, in order
	ToolResults []ports.ToolResult // ToolResult calls, in order
}

func (s SpeechSent) clone() SpeechSent {
	s.Audio = slices.Clone(s.Audio)
	s.Responses = slices.Clone(s.Responses)
	s.Heard = slices.Clone(s.Heard)
	s.ToolResults = slices.Clone(s.ToolResults)
	return s
}

// SpeechSession is a fake ports.SpeechSession together with its model's
// side. Client methods (Format ... Close) are those of the port; the other
// methods are for the test.
type SpeechSession struct {
	cfg    ports.SpeechConfig
	format ports.AudioFormat
	mode   ports.Interruptions
	st     *stream[ports.SpeechEvent]
	opened time.Time

	mu      sync.Mutex
	sent    SpeechSent
	sendErr error
	said    int // names generated so far (utterances, tool calls)
	changed changes
}

// Format returns the model's format.
func (s *SpeechSession) Format() ports.AudioFormat { return s.format }

// Interruptions says who handles interruptions.
func (s *SpeechSession) Interruptions() ports.Interruptions { return s.mode }

// record applies add to what was sent, unless the session ended or a send
// error is injected.
func (s *SpeechSession) record(ctx context.Context, op string, add func(*SpeechSent)) error {
	if err := errCheck(ctx, op); err != nil {
		return err
	}
	if err := s.st.alive(op); err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.sendErr; err != nil {
		s.mu.Unlock()
		return fmt.Errorf("fake: %s: %w", op, err)
	}
	add(&s.sent)
	s.mu.Unlock()
	s.changed.notify()
	return nil
}

// AppendAudio records a copy of audio.
func (s *SpeechSession) AppendAudio(ctx context.Context, audio []byte) error {
	frame := slices.Clone(audio)
	return s.record(ctx, "append audio", func(sent *SpeechSent) { sent.Audio = append(sent.Audio, frame) })
}

// Respond records the request and its instructions.
func (s *SpeechSession) Respond(ctx context.Context, instructions string) error {
	return s.record(ctx, "respond", func(sent *SpeechSent) {
		sent.Responses = append(sent.Responses, instructions)
	})
}

// Heard records the report; a full duplex session records nothing, as its
// model needs no word.
func (s *SpeechSession) Heard(ctx context.Context, utterance string, ms int) error {
	if s.mode == ports.InterruptedByModel {
		return s.record(ctx, "heard", func(*SpeechSent) {})
	}
	return s.record(ctx, "heard", func(sent *SpeechSent) {
		sent.Heard = append(sent.Heard, peer.Heard{Utterance: utterance, Ms: ms})
	})
}

// Recv returns the next event the test emitted. Once the session ended it
// returns an error wrapping ports.ErrClosed and a *ports.SessionEnded.
func (s *SpeechSession) Recv(ctx context.Context) (ports.SpeechEvent, error) {
	return s.st.recv(ctx)
}

// Close ends the session; Done is closed. It is idempotent.
func (s *SpeechSession) Close() error {
	if s.st.close(&ports.SessionEnded{Reason: "local_close", After: time.Since(s.opened)}) {
		s.changed.notify()
	}
	return nil
}

// Config returns the configuration the session was opened with.
func (s *SpeechSession) Config() ports.SpeechConfig { return s.cfg }

// WaitSession returns the session's configuration (peer.Speech).
func (s *SpeechSession) WaitSession(context.Context) (ports.SpeechConfig, error) {
	return s.cfg, nil
}

// Done is closed when the client closed the session.
func (s *SpeechSession) Done() <-chan struct{} { return s.st.done() }

// Sent returns a copy of what the client sent so far.
func (s *SpeechSession) Sent() SpeechSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent.clone()
}

// WaitSent blocks until cond holds for what the client sent, and returns
// that; it returns an error when ctx ends first.
func (s *SpeechSession) WaitSent(ctx context.Context, cond func(SpeechSent) bool) (SpeechSent, error) {
	var got SpeechSent
	err := s.changed.until(ctx, func() bool {
		got = s.Sent()
		return cond(got)
	})
	return got, err
}

// FailSends makes every later client send fail with err (nil restores
// normal sending).
func (s *SpeechSession) FailSends(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendErr = err
}

// ReceivedAudio returns the audio chunks sent so far (peer.Speech).
func (s *SpeechSession) ReceivedAudio() [][]byte { return s.Sent().Audio }

// Responds counts Respond calls (peer.Speech).
func (s *SpeechSession) Responds() int { return len(s.Sent().Responses) }

// Heards returns what the session was told the caller heard (peer.Speech's
// Heard, which the port's own Heard method shadows on a session).
func (s *SpeechSession) Heards() []peer.Heard { return s.Sent().Heard }

// Emit queues ev for the client's Recv. It blocks while the client lags
// far behind, until ctx is done; it fails with ports.ErrClosed once the
// session ended.
func (s *SpeechSession) Emit(ctx context.Context, evs ...ports.SpeechEvent) error {
	for _, ev := range evs {
		if err := s.st.push(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// Say emits a whole utterance under a generated name (see SayAs).
func (s *SpeechSession) Say(ctx context.Context, transcript string, chunks ...[]byte) error {
	s.mu.Lock()
	s.said++
	u := fmt.Sprintf("fake_utt_%d", s.said)
	s.mu.Unlock()
	return s.SayAs(ctx, u, transcript, chunks...)
}

// SayAs emits a whole utterance named utterance: one audio event per
// chunk, the utterance's end, its transcript, and usage.
func (s *SpeechSession) SayAs(ctx context.Context, utterance, transcript string, chunks ...[]byte) error {
	evs := make([]ports.SpeechEvent, 0, len(chunks)+3)
	for _, c := range chunks {
		evs = append(evs, ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: utterance, Audio: slices.Clone(c)})
	}
	words := len(transcript)/4 + 1
	evs = append(evs,
		ports.SpeechEvent{Type: ports.SpeechUtteranceDone, Utterance: utterance},
		ports.SpeechEvent{Type: ports.SpeechAssistantText, Utterance: utterance, Text: transcript, Final: true},
		ports.SpeechEvent{Type: ports.SpeechUsage, Usage: ports.Usage{InputTokens: 10, OutputTokens: words, TotalTokens: 10 + words}},
	)
	return s.Emit(ctx, evs...)
}

// StartSpeech emits "the caller started speaking" for the caller's
// utterance.
func (s *SpeechSession) StartSpeech(ctx context.Context, utterance string) error {
	return s.Emit(ctx, ports.SpeechEvent{Type: ports.SpeechCallerStarted, Utterance: utterance})
}

// CallerSpeaks makes the model hear the caller say text: started, stopped
// and the whole transcript of a new caller utterance, or, for a full
// duplex session, only the words, unnamed.
func (s *SpeechSession) CallerSpeaks(ctx context.Context, text string) error {
	if s.mode == ports.InterruptedByModel {
		return s.Emit(ctx, ports.SpeechEvent{Type: ports.SpeechCallerText, Text: text})
	}
	s.mu.Lock()
	s.said++
	u := fmt.Sprintf("fake_caller_%d", s.said)
	s.mu.Unlock()
	return s.Emit(ctx,
		ports.SpeechEvent{Type: ports.SpeechCallerStarted, Utterance: u},
		ports.SpeechEvent{Type: ports.SpeechCallerStopped, Utterance: u},
		ports.SpeechEvent{Type: ports.SpeechCallerText, Utterance: u, Text: text, Final: true},
	)
}

// Fail emits an error event; a fatal one also ends the session with reason
// "fatal_error".
func (s *SpeechSession) Fail(ctx context.Context, e ports.ModelError) error {
	if err := s.Emit(ctx, ports.SpeechEvent{Type: ports.SpeechError, Err: &e}); err != nil {
		return err
	}
	if e.Fatal {
		return s.End(ctx, "fatal_error")
	}
	return nil
}

// Hangup ends the session from the model's side (reason "remote_closed").
func (s *SpeechSession) Hangup(ctx context.Context) error { return s.End(ctx, "remote_closed") }

// End ends the session from the model's side with reason (for example
// "session_limit"): the client's Recv returns the events queued before,
// then ports.ErrClosed; its sends fail at once.
func (s *SpeechSession) End(ctx context.Context, reason string) error {
	return s.st.end(ctx, &ports.SessionEnded{Reason: reason, After: time.Since(s.opened)})
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
