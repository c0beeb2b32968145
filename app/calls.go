package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// Defaults for CallsDeps.
const (
	// DefaultTokenTTL is how long a stream token (and a pre-warmed session)
	// waits for its media stream.
	DefaultTokenTTL = 60 * time.Second
	// DefaultStartTimeout bounds the wait for a new stream's start event:
	// Twilio sends it right after connecting.
	DefaultStartTimeout = 10 * time.Second
	// DefaultOpenTimeout bounds opening a speech session while the caller
	// waits.
	DefaultOpenTimeout = 10 * time.Second
)

// CallsHooks are optional observers for metrics. Nil fields are skipped.
// They are called synchronously, possibly from several goroutines at once,
// so they must be fast and safe for concurrent use.
type CallsHooks struct {
	// CallStarted is called when a stream's token was accepted and its
	// call begins.
	CallStarted func()
	// CallEnded is called once per started call with its summary.
	CallEnded func(CallSummary)
	// FirstAudio is called with the time from the start event to the
	// first assistant audio sent to the caller.
	FirstAudio func(time.Duration)
	// BargeIn is called each time the caller's speech cut the assistant.
	BargeIn func()
	// ModelError is called with the code (or type) of each error event
	// the speech model reported.
	ModelError func(code string)
	// StreamRefused is called when a media stream is refused before its
	// call starts, with the reason ("invalid_token", "expired_token",
	// "no_start", "token_store_unavailable", "model_unavailable").
	StreamRefused func(reason string)
}

// CallsDeps are the dependencies and settings of a CallsService.
type CallsDeps struct {
	Tokens ports.TokenStore  // required
	Speech ports.SpeechModel // required
	Logger *slog.Logger      // nil discards logs
	// Session configures every speech session: instructions, voice, turn
	// detection and transcription model. Its CallSid is set per call.
	Session ports.SpeechConfig
	// TokenTTL is the life of a stream token, and how long a pre-warmed
	// session waits for its stream. Zero means DefaultTokenTTL.
	TokenTTL time.Duration
	// AllowedNumbers, when not empty, is the caller allowlist (E.164);
	// other callers are rejected.
	AllowedNumbers []string
	// AISpeaksFirst makes the assistant open the call, with Greeting as
	// the instruction of its first response.
	AISpeaksFirst bool
	Greeting      string
	// DisablePrewarm turns off opening the speech session while the
	// incoming-call webhook is answered (it is on by default).
	DisablePrewarm bool
	// StartTimeout bounds the wait for a stream's start event; zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// OpenTimeout bounds opening a speech session; zero means
	// DefaultOpenTimeout.
	OpenTimeout time.Duration
	Hooks       CallsHooks
}

// CallSummary is what is known of a call when it ends; it is logged as one
// structured line and handed to CallsHooks.CallEnded.
type CallSummary struct {
	CallSid   string
	StreamSid string
	Duration  time.Duration
	// EndReason says which side ended the call and why: "caller_hangup",
	// "stream_closed", "stream_lost", "stream_frame_too_big",
	// "model_closed", "model_session_limit",
	// "model_fatal_error", "model_lost", "telephony_failed",
	// "model_failed" or "shutdown".
	EndReason string
	Turns     []domain.Turn
	BargeIns  int
	Digits    string
	Usage     ports.Usage
	// FirstAudio is the time from the start event to the first assistant
	// audio sent to the caller; zero when none was sent.
	FirstAudio time.Duration
	// Prewarmed tells whether the speech session was opened ahead of the
	// stream.
	Prewarmed bool
	// FramesIn counts caller frames relayed to the model, FramesOut
	// assistant chunks relayed to the caller, FramesDropped assistant
	// chunks refused because the caller had interrupted their response.
	FramesIn, FramesOut, FramesDropped int
	ModelErrors                        int
}

// CallsService implements ports.Calls: the phone-call use case.
//
// Answer applies the allowlist, mints the single-use stream token and,
// unless disabled, starts opening the speech session right away, keyed by
// the token, so that the caller's first words do not wait for the model's
// handshake. Serve checks the stream's token before it uses any speech
// session, then bridges the call (see call). A pre-warmed session whose
// stream does not arrive within the token's life is closed. Pre-warming is
// per process: when the stream lands on another gateway instance, that
// instance opens a session itself and the unused one is discarded.
type CallsService struct {
	tokens  ports.TokenStore
	speech  ports.SpeechModel
	log     *slog.Logger
	session ports.SpeechConfig
	allowed map[string]bool
	d       CallsDeps

	ctx    context.Context // the service's lifetime; cancelled by Shutdown
	cancel context.CancelFunc
	wg     tracker // pre-warm goroutines

	mu      sync.Mutex
	closing bool
	warm    map[string]*prewarm // by ports.TokenKey(token)

	// testHookCallerEvent, when set by a test, is called by a call's
	// telephony reader after it queued a mark or key press for the owner,
	// which applies it before the next model event.
	testHookCallerEvent func(ports.CallEvent)
}

var _ ports.Calls = (*CallsService)(nil)

// NewCalls returns a CallsService. Call Shutdown when done with it.
func NewCalls(d CallsDeps) *CallsService {
	if d.TokenTTL <= 0 {
		d.TokenTTL = DefaultTokenTTL
	}
	if d.StartTimeout <= 0 {
		d.StartTimeout = DefaultStartTimeout
	}
	if d.OpenTimeout <= 0 {
		d.OpenTimeout = DefaultOpenTimeout
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	var allowed map[string]bool
	if len(d.AllowedNumbers) > 0 {
		allowed = make(map[string]bool, len(d.AllowedNumbers))
		for _, n := range d.AllowedNumbers {
			if n = normalizeNumber(n); n != "" {
				allowed[n] = true
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &CallsService{
		tokens:  d.Tokens,
		speech:  d.Speech,
		log:     d.Logger,
		session: d.Session,
		allowed: allowed,
		d:       d,
		ctx:     ctx,
		cancel:  cancel,
		warm:    make(map[string]*prewarm),
	}
}

// Answer implements ports.Calls. A caller not on a non-empty allowlist
// (anonymous callers included) is rejected. Otherwise a token bound to the
// CallSid is issued and, unless pre-warming is off, a speech session starts
// opening in the background. Errors: ErrInvalidInput without a CallSid,
// ErrUnavailable when the token store is down or the service is shutting
// down. The token is never logged. Safe for concurrent use.
func (s *CallsService) Answer(ctx context.Context, call ports.IncomingCall) (ports.CallAnswer, error) {
	if call.CallSid == "" {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: no CallSid: %w", ports.ErrInvalidInput)
	}
	log := s.log.With("call_sid", call.CallSid)
	if s.allowed != nil && !s.allowed[normalizeNumber(call.From)] {
		log.Info("call rejected: caller not on ALLOWED_NUMBERS", "from", maskUser(call.From))
		return ports.CallAnswer{Reject: true}, nil
	}
	token, _, err := s.tokens.Issue(ctx, call.CallSid, s.d.TokenTTL)
	if err != nil {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: issue token: %w", err)
	}
	if !s.d.DisablePrewarm && !s.startPrewarm(token, call.CallSid) {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: shutting down: %w", ports.ErrUnavailable)
	}
	log.Info("call answered", "from", maskUser(call.From), "prewarm", !s.d.DisablePrewarm)
	return ports.CallAnswer{Token: token}, nil
}

// Serve implements ports.Calls: it waits for the start event, consumes its
// token, takes the pre-warmed speech session (or opens one) and bridges
// the call until either side ends it or ctx is done. A missing, wrong,
// expired, replayed or other-call token closes the stream with a policy
// violation (1008) before any speech session is used. It closes ch before
// it returns, and returns nil when the caller hung up, else an error that
// is already logged. Safe for concurrent use.
func (s *CallsService) Serve(ctx context.Context, ch ports.TelephonyChannel) error {
	start, err := s.awaitStart(ctx, ch)
	if err != nil {
		return err
	}
	started := time.Now()
	log := s.log.With("call_sid", start.CallSid, "stream_sid", start.StreamSid)
	token := start.Params["token"]
	key := ports.TokenKey(token)

	if err := s.tokens.Consume(ctx, token, start.CallSid); err != nil {
		s.discard(key) // a token presented for the wrong call is spent
		reason, policy := "invalid_token", true
		switch {
		case errors.Is(err, ports.ErrTokenExpired):
			reason = "expired_token"
		case !errors.Is(err, ports.ErrTokenInvalid):
			reason, policy = "token_store_unavailable", false
		}
		return s.refuse(log, ch, reason, policy, err)
	}

	sess, prewarmed, err := s.openSession(ctx, key, start.CallSid, log)
	if err != nil {
		return s.refuse(log, ch, "model_unavailable", false, err)
	}
	if s.d.Hooks.CallStarted != nil {
		s.d.Hooks.CallStarted()
	}
	c := newCall(s, ch, sess, log)
	c.sum.CallSid, c.sum.StreamSid, c.sum.Prewarmed = start.CallSid, start.StreamSid, prewarmed
	c.started = started
	return c.run(ctx)
}

// awaitStart reads the stream until its start event, within StartTimeout.
// Twilio sends "connected" first; anything else before "start" is skipped.
// The timeout closes the stream rather than ending Recv's context, so that
// the channel keeps reading inline (see call).
func (s *CallsService) awaitStart(ctx context.Context, ch ports.TelephonyChannel) (ports.CallEvent, error) {
	sctx, cancel := context.WithTimeout(ctx, s.d.StartTimeout)
	defer cancel()
	stop := context.AfterFunc(sctx, func() { _ = ch.Close("no start event", false) })
	defer stop()
	for {
		ev, err := ch.Recv(context.Background())
		if err == nil && ev.Type == ports.CallStart && !stop() {
			err = sctx.Err() // the timeout struck as the start arrived: the stream is closing
		}
		if err != nil {
			_ = ch.Close("no start event", false)
			if s.d.Hooks.StreamRefused != nil {
				s.d.Hooks.StreamRefused("no_start")
			}
			if sctx.Err() != nil {
				s.log.Warn("media stream without a start event: closed", "err", sctx.Err())
				return ports.CallEvent{}, fmt.Errorf("calls: await start: %w", sctx.Err())
			}
			s.log.Info("media stream ended before its start event", "err", err)
			return ports.CallEvent{}, nil
		}
		switch ev.Type {
		case ports.CallStart:
			return ev, nil
		case ports.CallConnected:
		default:
			s.log.Debug("event before start skipped", "event", ev.Type.String())
		}
	}
}

// refuse closes a stream that will not become a call, logs why and
// returns the error. The token is never logged.
func (s *CallsService) refuse(log *slog.Logger, ch ports.TelephonyChannel, reason string, policy bool, err error) error {
	if policy {
		log.Warn("media stream refused", "reason", reason, "err", err)
	} else {
		log.Error("media stream refused", "reason", reason, "err", err)
	}
	if s.d.Hooks.StreamRefused != nil {
		s.d.Hooks.StreamRefused(reason)
	}
	if cerr := ch.Close(reason, policy); cerr != nil {
		log.Debug("close refused stream", "err", cerr)
	}
	return fmt.Errorf("calls: serve: %s: %w", reason, err)
}

// openSession returns the session pre-warmed for the token, waiting for it
// to finish opening if need be, or opens a new one when there is none or it
// failed.
func (s *CallsService) openSession(ctx context.Context, key, callSid string, log *slog.Logger) (ports.SpeechSession, bool, error) {
	if p := s.take(key); p != nil {
		select {
		case <-p.done:
		case <-ctx.Done():
			p.abandon()
			return nil, false, fmt.Errorf("calls: wait for the pre-warmed session: %w", ctx.Err())
		}
		if p.err == nil {
			return p.sess, true, nil
		}
		log.Warn("pre-warmed speech session failed: opening another", "err", p.err)
	}
	octx, cancel := context.WithTimeout(ctx, s.d.OpenTimeout)
	defer cancel()
	sess, err := s.speech.Open(octx, s.config(callSid))
	if err != nil {
		return nil, false, fmt.Errorf("calls: open speech session: %w", err)
	}
	return sess, false, nil
}

func (s *CallsService) config(callSid string) ports.SpeechConfig {
	cfg := s.session
	cfg.CallSid = callSid
	return cfg
}

// prewarm is a speech session opened ahead of its stream. Whoever removes
// it from CallsService.warm owns it: the stream that takes it (and uses or
// abandons it), or the discard at a token failure, the end of the token's
// life, or Shutdown (which abandon it).
type prewarm struct {
	done  chan struct{} // closed when Open has returned; then sess and err are set
	taken chan struct{} // closed when removed from the map by take or Shutdown
	sess  ports.SpeechSession
	err   error

	mu        sync.Mutex
	opened    bool // Open has returned
	abandoned bool // nobody will use the session: close it once open
}

// finish records the result of Open and reports whether the session was
// abandoned meanwhile.
func (p *prewarm) finish(sess ports.SpeechSession, err error) (abandoned bool) {
	p.mu.Lock()
	p.sess, p.err, p.opened = sess, err, true
	abandoned = p.abandoned
	p.mu.Unlock()
	close(p.done)
	return abandoned
}

// abandon closes the session now if it is open, else as soon as Open
// returns.
func (p *prewarm) abandon() {
	p.mu.Lock()
	p.abandoned = true
	sess := p.sess
	if !p.opened {
		sess = nil // the pre-warm goroutine closes it
	}
	p.mu.Unlock()
	if sess != nil {
		_ = sess.Close()
	}
}

// startPrewarm starts opening a session for token in the background. It
// reports false once the service is shutting down.
func (s *CallsService) startPrewarm(token, callSid string) bool {
	key := ports.TokenKey(token)
	p := &prewarm{done: make(chan struct{}), taken: make(chan struct{})}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	s.warm[key] = p
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		// The session may wait for its stream as long as the token lives.
		ctx, cancel := context.WithTimeout(s.ctx, s.d.TokenTTL)
		defer cancel()
		sess, err := s.speech.Open(ctx, s.config(callSid))
		if p.finish(sess, err) {
			if sess != nil {
				_ = sess.Close()
			}
			return
		}
		select {
		case <-p.taken: // its taker owns it now
		case <-ctx.Done():
			if s.remove(key, p) {
				s.log.Info("pre-warmed speech session discarded: no stream arrived in time", "call_sid", callSid)
				p.abandon()
			}
		}
	}()
	return true
}

// take removes the pre-warm of key, if any, and hands it to the caller.
func (s *CallsService) take(key string) *prewarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.warm[key]
	if p != nil {
		delete(s.warm, key)
		close(p.taken)
	}
	return p
}

// remove deletes p from the pre-warms unless someone took it.
func (s *CallsService) remove(key string, p *prewarm) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warm[key] != p {
		return false
	}
	delete(s.warm, key)
	return true
}

// discard closes the pre-warmed session of key, if any.
func (s *CallsService) discard(key string) {
	if p := s.take(key); p != nil {
		p.abandon()
	}
}

// Shutdown stops pre-warming (Answer then fails with ErrUnavailable),
// closes the pre-warmed sessions that no stream took, and waits for the
// pre-warm goroutines. It returns an error wrapping ctx.Err() when that
// took longer than ctx allowed. Calls in progress are not its business: the HTTP server
// drains them before. Safe to call more than once.
func (s *CallsService) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	left := make([]*prewarm, 0, len(s.warm))
	for key, p := range s.warm {
		delete(s.warm, key)
		close(p.taken)
		left = append(left, p)
	}
	s.mu.Unlock()
	s.cancel() // ends the opens still in progress
	for _, p := range left {
		p.abandon()
	}
	// The opens were cancelled: only closes remain, so waiting on after
	// the deadline is short.
	if err := drain(ctx, &s.wg, func() {}); err != nil {
		return fmt.Errorf("calls: shutdown: %w", err)
	}
	return nil
}

// normalizeNumber reduces a phone number to E.164 form for comparison:
// spaces, dashes, dots and parentheses removed, a leading "+" added.
// Anything that is not then a "+" and digits (an anonymous or withheld
// caller id) normalizes to "".
func normalizeNumber(n string) string {
	var b strings.Builder
	b.Grow(len(n) + 1)
	b.WriteByte('+')
	for i, r := range strings.TrimSpace(n) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return ""
		}
	}
	if b.Len() < 3 {
		return ""
	}
	return b.String()
}
