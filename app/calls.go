package app

import (
	"context"
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
	// Session configures every speech session: its instructions. Its
	// CallID is set per call.
	Session ports.SpeechConfig
	// Transcoders converts audio between the caller's format and the
	// model's when they differ; nil refuses such calls. Sides that share a
	// format (Twilio and both OpenAI backends: mu-law at 8 kHz) pass audio
	// through untouched.
	Transcoders ports.TranscoderFactory
	// Tools are what the assistant may do on calls besides talking (see
	// Tools); the zero value offers nothing.
	Tools Tools
	// PlaybackLead is how far ahead of playback a full duplex model's
	// audio is handed to the caller; zero means DefaultPlaybackLead.
	PlaybackLead time.Duration
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
	CallID   string
	Duration time.Duration
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
	// MaxTurnText bytes (and its utterance name to maxUtterance), control characters
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
	// FramesIn counts caller chunks relayed to the model, FramesOut
	// assistant chunks relayed to the caller, FramesDropped assistant
	// chunks not played because the caller had interrupted their
	// utterance.
	FramesIn, FramesOut, FramesDropped int
	ModelErrors                        int
	// FramesSkipped counts the caller's frames the telephony channel
	// skipped (malformed, unknown, unusable audio).
	FramesSkipped int
	// CallerEventsSkipped counts the key presses from the caller that were
	// not applied (not exactly one of 0-9, * and #) and the chunks of
	// caller audio that could not be converted to the model's format.
	// CallerEventsDropped counts the key presses left out because the
	// queue for the call's owner was full (maxCallerQueue).
	CallerEventsSkipped, CallerEventsDropped int
	// Tools lists the tools the assistant used, in the order they ended.
	Tools []ToolUse
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
	// maxUtterance is the longest utterance name of a turn in a summary,
	// in bytes.
	maxUtterance = 64
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
	session ports.SpeechConfig // with the call's tools
	allowed map[string]bool
	d       CallsDeps

	ctx    context.Context // the service's lifetime; cancelled by Shutdown
	cancel context.CancelFunc
	wg     tracker // pre-warm goroutines

	mu      sync.Mutex
	closing bool
	warm    map[string]*prewarm // by call id
	// warmToken maps the TokenKey of each pre-warm's latest token to its
	// call id, so that a token refused at its stream discards the pre-warm
	// it was issued with (and no other).
	warmToken map[string]string

	// testHookCallerEvent, when set by a test, is called by a call's
	// telephony reader after it published a playback report or queued a
	// key press for the owner, which applies it before the next model
	// event.
	testHookCallerEvent func(ports.CallEvent)
	// testHookModelEvent, when set by a test, is called by a call's owner
	// after it applied a speech event.
	testHookModelEvent func(ports.SpeechEvent)
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
		session:   withTools(d.Session, d.Tools),
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
// Errors: ErrInvalidInput without a call id, ErrUnavailable when the token
// store is down or the service is shutting down. The token is never
// logged. Safe for concurrent use.
func (s *CallsService) Answer(ctx context.Context, call ports.IncomingCall) (ports.CallAnswer, error) {
	if call.CallID == "" {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: no call id: %w", ports.ErrInvalidInput)
	}
	log := s.log.With("call_id", call.CallID)
	if s.allowed != nil && !s.allowed[normalizeNumber(call.From)] {
		log.Info("call rejected: caller not on ALLOWED_NUMBERS", "from", maskUser(call.From))
		return ports.CallAnswer{Reject: true}, nil
	}
	token, repeat, err := s.tokens.Issue(ctx, call.CallID, s.d.TokenTTL)
	if err != nil {
		return ports.CallAnswer{}, fmt.Errorf("calls: answer: issue token: %w", err)
	}
	prewarm := prewarmOff
	if !s.d.DisablePrewarm {
		var ok bool
		if prewarm, ok = s.startPrewarm(token, call.CallID, repeat); !ok {
			return ports.CallAnswer{}, fmt.Errorf("calls: answer: shutting down: %w", ports.ErrUnavailable)
		}
	}
	log.Info("call answered", "from", maskUser(call.From), "repeat", repeat, "prewarm", prewarm.String())
	return ports.CallAnswer{Token: token}, nil
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

// withTools is cfg with the tools a call's model is offered.
func withTools(cfg ports.SpeechConfig, t Tools) ports.SpeechConfig {
	cfg.Tools = append(cfg.Tools[:len(cfg.Tools):len(cfg.Tools)], t.voiceSpecs()...)
	cfg.MCP = append(cfg.MCP[:len(cfg.MCP):len(cfg.MCP)], t.MCP...)
	return cfg
}
