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
	// DefaultOpenTimeout bounds opening a speech session, and how long a
	// stream waits for its session.
	DefaultOpenTimeout = 10 * time.Second
	// DefaultStreamIdleTimeout is how long a call may go without media from
	// the caller, or stay blocked writing to the caller, before it is ended.
	// Twilio sends a media frame every 20 ms for the whole call, silence
	// included.
	DefaultStreamIdleTimeout = 10 * time.Second
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
	// OpenTimeout bounds opening a speech session, pre-warmed or not, and a
	// stream's whole wait for its session from its start event (the
	// pre-warm, then a second try if it failed); a stream that has no
	// session by then is closed normally, so that Twilio goes on with the
	// TwiML after <Connect> (the apology). Zero means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// StreamIdleTimeout ends a call whose stream has brought no media for
	// that long ("stream_idle"), whose write to the caller has been blocked
	// that long ("stream_stalled": the peer stopped reading), or whose
	// write of caller audio to the speech session has ("model_stalled"),
	// closing both sides. It is checked four times per period, so the call
	// ends within 1.25 times it. Zero means DefaultStreamIdleTimeout.
	StreamIdleTimeout time.Duration
	// LogDigits shows the keys the caller pressed in the log; by default
	// only their number is logged (a PIN or a card number must not reach
	// the logs). CallSummary.Digits holds them either way.
	LogDigits bool
	Hooks     CallsHooks
}

// CallSummary is what is known of a call when it ends; it is logged as one
// structured line and handed to CallsHooks.CallEnded.
type CallSummary struct {
	CallSid   string
	StreamSid string
	Duration  time.Duration
	// EndReason says which side ended the call and why: "caller_hangup",
	// "stream_closed", "stream_lost", "stream_frame_too_big",
	// "stream_idle" (no media from the caller for StreamIdleTimeout),
	// "stream_stalled" (a write to the caller blocked that long),
	// "model_closed", "model_session_limit",
	// "model_fatal_error", "model_lost", "model_stalled" (a write to the
	// speech session blocked for StreamIdleTimeout), "telephony_failed",
	// "model_failed" or "shutdown".
	EndReason string
	// Turns are the call's last MaxSummaryTurns turns, each text cut to
	// MaxTurnText bytes (and its item id to maxItemID), control characters
	// made spaces; TurnsOmitted counts the earlier turns left out.
	Turns        []domain.Turn
	TurnsOmitted int
	BargeIns     int
	// Digits are the first domain.MaxDigits keys the caller pressed, in
	// order; DigitCount counts them all. They are logged only with
	// CallsDeps.LogDigits.
	Digits     string
	DigitCount int
	Usage      ports.Usage
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
	// FramesSkipped counts the caller's frames the telephony channel
	// skipped (malformed, unknown, unusable audio).
	FramesSkipped int
	// CallerEventsSkipped counts the marks and key presses from the caller
	// that were not applied: a mark that is not one the call sent (or was
	// echoed already), a key press that is not exactly one of 0-9, * and
	// #. CallerEventsDropped counts those left out because the queue for
	// the call's owner was full (maxCallerQueue).
	CallerEventsSkipped, CallerEventsDropped int
}

// Bounds of what a call's summary carries, so that its log line stays
// bounded (about 40 KB at most, a few KB usually) however long the call
// and whatever its peers send.
const (
	// MaxSummaryTurns is how many turns, the last ones, a summary holds.
	MaxSummaryTurns = 40
	// MaxTurnText is the longest text of a turn in a summary, in bytes; a
	// longer one is cut at a character boundary and ends with "…".
	MaxTurnText = 256
	// maxItemID is the longest item id of a turn in a summary, in bytes.
	maxItemID = 64
)

// CallsService implements ports.Calls: the phone-call use case.
//
// Answer applies the allowlist, mints the single-use stream token and,
// unless disabled, starts opening the speech session right away, keyed by
// the CallSid, so that the caller's first words do not wait for the
// model's handshake. A repeated webhook of a call (a Twilio retry, or a
// replay) gets a new token that replaces the earlier one (TokenStore.Issue)
// and reuses the call's pre-warm: a call never has two pre-warmed sessions,
// in one process or, through the shared token store, in several. Serve
// checks the stream's token before it uses any speech session, then
// bridges the call (see call). A pre-warmed session whose stream does not
// arrive within the life of the call's latest token is closed.
// Pre-warming is per process: when the stream lands on another gateway
// instance, that instance opens a session itself and the unused one is
// discarded.
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
	warm    map[string]*prewarm // by CallSid
	// warmToken maps the TokenKey of each pre-warm's latest token to its
	// CallSid, so that a token refused at its stream discards the pre-warm
	// it was issued with (and no other).
	warmToken map[string]string

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
	if d.StreamIdleTimeout <= 0 {
		d.StreamIdleTimeout = DefaultStreamIdleTimeout
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
		tokens:    d.Tokens,
		speech:    d.Speech,
		log:       d.Logger,
		session:   d.Session,
		allowed:   allowed,
		d:         d,
		ctx:       ctx,
		cancel:    cancel,
		warm:      make(map[string]*prewarm),
		warmToken: make(map[string]string),
	}
}

// Answer implements ports.Calls. A caller not on a non-empty allowlist
// (anonymous callers included) is rejected. Otherwise a token bound to the
// CallSid is issued, replacing the call's earlier token if the webhook was
// answered before, and, unless pre-warming is off, a speech session starts
// opening in the background: for a repeated webhook, the call's pre-warm
// in this process is reused, and none is started when the token store
// says the call was answered before (another instance pre-warmed it).
// Errors: ErrInvalidInput without a CallSid, ErrUnavailable when the token
// store is down or the service is shutting down. The token is never
// logged. Safe for concurrent use.
func (s *CallsService) Answer(ctx context.Context, call ports.IncomingCall) (ports.CallAnswer, error) {
	if call.CallSid == "" {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: no CallSid: %w", ports.ErrInvalidInput)
	}
	log := s.log.With("call_sid", call.CallSid)
	if s.allowed != nil && !s.allowed[normalizeNumber(call.From)] {
		log.Info("call rejected: caller not on ALLOWED_NUMBERS", "from", maskUser(call.From))
		return ports.CallAnswer{Reject: true}, nil
	}
	token, repeat, err := s.tokens.Issue(ctx, call.CallSid, s.d.TokenTTL)
	if err != nil {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: issue token: %w", err)
	}
	prewarm := prewarmOff
	if !s.d.DisablePrewarm {
		var ok bool
		if prewarm, ok = s.startPrewarm(token, call.CallSid, repeat); !ok {
			return ports.CallAnswer{}, fmt.Errorf("calls: answer: shutting down: %w", ports.ErrUnavailable)
		}
	}
	log.Info("call answered", "from", maskUser(call.From), "repeat", repeat, "prewarm", prewarm.String())
	return ports.CallAnswer{Token: token}, nil
}

// Serve implements ports.Calls: it waits for the start event, consumes its
// token, takes the pre-warmed speech session (or opens one) and bridges
// the call until either side ends it or ctx is done. A stream that ends
// before its start event is a quiet, normal end (nil). A missing, wrong,
// expired, replayed, replaced or other-call token closes the stream with a
// policy violation (1008) before any speech session is used. A stream that
// has no speech session within OpenTimeout of its start event is closed
// normally (1000), so that Twilio plays the TwiML after <Connect>. It
// closes ch before it returns, and returns nil when the caller hung up,
// else an error that is already logged. Safe for concurrent use.
func (s *CallsService) Serve(ctx context.Context, ch ports.TelephonyChannel) error {
	start, err := s.awaitStart(ctx, ch)
	if err != nil || start.Type != ports.CallStart {
		return err // no start event: awaitStart closed the stream and logged why
	}
	started := time.Now()
	log := s.log.With("call_sid", start.CallSid, "stream_sid", start.StreamSid)
	token := start.Params["token"]
	key := ports.TokenKey(token)

	if err := s.tokens.Consume(ctx, token, start.CallSid); err != nil {
		s.discard(key)
		reason, policy := "invalid_token", true
		switch {
		case errors.Is(err, ports.ErrTokenExpired):
			reason = "expired_token"
		case !errors.Is(err, ports.ErrTokenInvalid):
			reason, policy = "token_store_unavailable", false
		}
		return s.refuse(log, ch, reason, policy, err)
	}

	// The caller hears silence until the session is there: the wait is
	// bounded from the start event, whatever the pre-warm is doing.
	octx, cancel := context.WithDeadline(ctx, started.Add(s.d.OpenTimeout))
	defer cancel()
	sess, prewarmed, err := s.openSession(octx, start.CallSid, log)
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
// the channel keeps reading inline (see call). A stream that ends before
// its start event gives a zero event and nil; the timeout gives an error.
// Both are counted as refused ("no_start") and logged.
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

// openSession returns the session pre-warmed for the call, waiting for it
// to finish opening if need be, or opens a new one when there is none or it
// failed. ctx bounds the whole wait.
func (s *CallsService) openSession(ctx context.Context, callSid string, log *slog.Logger) (ports.SpeechSession, bool, error) {
	if p := s.take(callSid); p != nil {
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
	sess, err := s.speech.Open(ctx, s.config(callSid))
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

	// tokenKey and expires are those of the call's latest token; guarded
	// by CallsService.mu.
	tokenKey string
	expires  time.Time

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

// prewarmState says what Answer did about pre-warming, for its log line.
type prewarmState uint8

const (
	prewarmOff     prewarmState = iota // PREWARM=false
	prewarmStarted                     // a session started opening
	prewarmReused                      // the call's pre-warm here serves its new token
	prewarmSkipped                     // the call was answered before, with no pre-warm here: none started
)

func (p prewarmState) String() string {
	switch p {
	case prewarmStarted:
		return "started"
	case prewarmReused:
		return "reused"
	case prewarmSkipped:
		return "skipped: answered before"
	}
	return "off"
}

// startPrewarm starts opening a session for the call in the background,
// unless the call has a pre-warm here already (its latest token, token,
// then takes it over) or repeat says the call was answered before and it
// has none here: then another instance pre-warmed it, or the stream will
// open a session itself. It reports false once the service is shutting
// down.
func (s *CallsService) startPrewarm(token, callSid string, repeat bool) (prewarmState, bool) {
	key := ports.TokenKey(token)
	expires := time.Now().Add(s.d.TokenTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return prewarmOff, false
	}
	if p := s.warm[callSid]; p != nil {
		delete(s.warmToken, p.tokenKey)
		p.tokenKey, p.expires = key, expires
		s.warmToken[key] = callSid
		return prewarmReused, true
	}
	if repeat {
		return prewarmSkipped, true
	}
	p := &prewarm{done: make(chan struct{}), taken: make(chan struct{}), tokenKey: key, expires: expires}
	s.warm[callSid] = p
	s.warmToken[key] = callSid
	s.wg.Add(1)
	go s.prewarm(p, callSid)
	return prewarmStarted, true
}

// prewarm opens p's session within OpenTimeout, then keeps it until a
// stream takes it or the call's latest token has expired.
func (s *CallsService) prewarm(p *prewarm, callSid string) {
	defer s.wg.Done()
	octx, cancel := context.WithTimeout(s.ctx, s.d.OpenTimeout)
	sess, err := s.speech.Open(octx, s.config(callSid))
	cancel()
	if p.finish(sess, err) {
		if sess != nil {
			_ = sess.Close()
		}
		return
	}
	// The session may wait for its stream as long as the call's latest
	// token lives.
	wait := time.NewTimer(s.expiry(p))
	defer wait.Stop()
	for {
		select {
		case <-p.taken: // its taker owns it now
			return
		case <-s.ctx.Done(): // Shutdown took it and abandons it
			return
		case <-wait.C:
		}
		if left := s.expiry(p); left > 0 { // a repeated webhook renewed it
			wait.Reset(left)
			continue
		}
		if s.remove(callSid, p) {
			s.log.Info("pre-warmed speech session discarded: no stream arrived in time", "call_sid", callSid)
			p.abandon()
		}
		return
	}
}

// expiry is how long p's latest token has left to live.
func (s *CallsService) expiry(p *prewarm) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(p.expires)
}

// takeLocked is take for a caller that holds s.mu.
func (s *CallsService) takeLocked(callSid string) *prewarm {
	p := s.warm[callSid]
	if p != nil {
		delete(s.warm, callSid)
		delete(s.warmToken, p.tokenKey)
		close(p.taken)
	}
	return p
}

// take removes the pre-warm of the call, if any, and hands it to the
// caller.
func (s *CallsService) take(callSid string) *prewarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(callSid)
}

// remove deletes p from the pre-warms unless someone took it.
func (s *CallsService) remove(callSid string, p *prewarm) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warm[callSid] != p {
		return false
	}
	delete(s.warm, callSid)
	delete(s.warmToken, p.tokenKey)
	return true
}

// discard closes the pre-warmed session whose call's latest token (as far
// as this process knows: a token replaced here is forgotten) has the key,
// if any: that token was refused at a stream (expired, spent, or
// presented for another call), so no stream will take the session with
// it.
func (s *CallsService) discard(key string) {
	s.mu.Lock()
	var p *prewarm
	if callSid, ok := s.warmToken[key]; ok {
		p = s.takeLocked(callSid)
	}
	s.mu.Unlock()
	if p != nil {
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
	for callSid := range s.warm {
		left = append(left, s.takeLocked(callSid))
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
