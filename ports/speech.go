package ports

import (
	"context"
	"time"
)

// SpeechModel opens speech-to-speech sessions: a voice model that listens
// to the caller and answers with audio.
//
// Implementations are safe for concurrent use: many calls open sessions at
// once.
type SpeechModel interface {
	// Open connects a new session and configures it with cfg. It blocks
	// until the session is ready to take audio (the remote side confirmed the
	// configuration) or until ctx is done.
	//
	// ctx bounds only the opening handshake; the session lives until Close or
	// until the remote side ends it. Errors: ErrUnavailable when the model
	// cannot be reached or refused the connection for a server-side reason,
	// ErrRejected when it refused the credentials or configuration.
	Open(ctx context.Context, cfg SpeechConfig) (SpeechSession, error)
}

// SpeechConfig configures one session. What is specific to a model (its
// name, voice, turn detection, transcription) is the adapter's own
// configuration, not the call's.
type SpeechConfig struct {
	Instructions string // the system message
	// Tools are the functions the model may call (SpeechToolCall); MCP the
	// remote MCP servers it may use by itself, where its backend hosts
	// them (an adapter whose backend cannot refuses them at Open with
	// ErrRejected).
	Tools []ToolSpec
	MCP   []MCPServer
	// CallID is for logs and tracing only.
	CallID string
}

// Interruptions says who stops the assistant when the caller talks over it.
type Interruptions uint8

const (
	// InterruptedByGateway: the model reports when the caller starts
	// speaking (SpeechCallerStarted) and keeps generating until told. The
	// gateway clears the caller's playback, tells the session how much of
	// the utterance was heard (Heard) and drops the late audio of every
	// utterance begun before the interruption.
	InterruptedByGateway Interruptions = iota
	// InterruptedByModel: the model is full duplex: it listens while it
	// speaks and stops by itself when talked over, and need not report the
	// caller's speech at all. The gateway keeps only a small lead of its
	// audio queued for playback, so that an interruption is heard within
	// that lead, and clears it when the caller's words take the turn.
	InterruptedByModel
)

func (i Interruptions) String() string {
	if i == InterruptedByModel {
		return "by_model"
	}
	return "by_gateway"
}

// SpeechSession is one open session. Audio travels base64-encoded in the
// session's Format, exactly as on the wire, so that audio passes through
// untouched when the telephony side shares the format.
//
// Send methods may be called from several goroutines at once; Recv must be
// called from one goroutine at a time. After Close every method returns an
// error wrapping ErrClosed.
type SpeechSession interface {
	// Format is the format of the audio in both directions. It never
	// changes and never blocks.
	Format() AudioFormat

	// Interruptions says how the session handles the caller talking over
	// the assistant. It never changes and never blocks.
	Interruptions() Interruptions

	// AppendAudio sends caller audio (base64 in Format). The bytes are
	// copied or written before it returns, so the caller may reuse audio.
	// Chunks are delivered in the order of the calls. It blocks only while
	// the connection is congested.
	AppendAudio(ctx context.Context, audio []byte) error

	// Respond asks the model to speak now, without waiting for the caller
	// (the greeting). instructions, when not empty, say what to say or how,
	// for this answer only. Errors: ErrClosed, ErrUnavailable when the
	// request could not be sent, ctx's error.
	Respond(ctx context.Context, instructions string) error

	// ToolResult gives the model the result of one of its tool calls and
	// lets it go on speaking with it. The adapter never asks the model to
	// answer while it is answering already: it sends the result at once
	// and the request to go on when the model is free. Results of calls
	// the model no longer knows are reported as a non-fatal SpeechError at
	// most. Errors: ErrClosed, ErrUnavailable, ctx's error.
	ToolResult(ctx context.Context, r ToolResult) error

	// Heard tells the model that the caller heard only the first ms
	// milliseconds of the assistant's utterance before talking over it, so
	// that the model's memory of the conversation holds what was heard, not
	// what was generated. Sessions whose model needs no such word (a full
	// duplex model knows) return nil at once. ms beyond the utterance's
	// audio is clamped by the adapter; an utterance the model no longer
	// knows is not an error worth ending the call for: it is reported as a
	// non-fatal SpeechError at most.
	Heard(ctx context.Context, utterance string, ms int) error

	// Recv blocks until the next event, ctx is done, or the session ends.
	// When the session ends it returns an error wrapping ErrClosed; the
	// *SessionEnded wrapped with it (errors.As) says why. Malformed or
	// unknown events are skipped (and logged at a bounded rate) by the
	// adapter, never returned as errors. The event's Audio is valid until
	// the next Recv.
	Recv(ctx context.Context) (SpeechEvent, error)

	// Close ends the session and releases its resources, taking at most a
	// few seconds to say goodbye to the model when its protocol asks for
	// it. It is safe to call more than once and from any goroutine; it
	// makes a blocked Recv return.
	Close() error
}

// SpeechEventType tells the kinds of SpeechEvent apart.
type SpeechEventType uint8

// The events of a speech session.
const (
	SpeechUnknown SpeechEventType = iota
	// SpeechAudio: assistant audio (Audio, base64 in the session's Format)
	// of the utterance Utterance. An utterance's audio comes in order; a
	// new Utterance id starts a new utterance.
	SpeechAudio
	// SpeechUtteranceDone: the utterance Utterance has no more audio.
	// Sessions that cannot tell may never send it.
	SpeechUtteranceDone
	// SpeechCallerStarted: the caller started speaking (Utterance: the
	// caller's utterance, when the model names it). Sent only by sessions
	// that leave interruptions to the gateway.
	SpeechCallerStarted
	// SpeechCallerStopped: the caller stopped speaking. Optional, as
	// SpeechCallerStarted.
	SpeechCallerStopped
	// SpeechCallerText: words of the caller (Text), transcribed. Utterance
	// names the caller's utterance when the model does; without it the
	// text continues the caller's current turn. Final says the text is the
	// whole of the utterance rather than a piece.
	SpeechCallerText
	// SpeechAssistantText: words of the assistant (Text), as
	// SpeechCallerText.
	SpeechAssistantText
	// SpeechUsage: what the model counted since the previous SpeechUsage
	// (Usage): the session's total is their sum.
	SpeechUsage
	// SpeechToolCall: the model asks for a tool to run (Tool); its
	// arguments are complete. The answer goes back with ToolResult.
	SpeechToolCall
	// SpeechError: the model reported an error (Err). A fatal one ends the
	// session: Recv returns ErrClosed next (Err.Fatal says so in advance
	// only when the model's protocol does).
	SpeechError
)

var speechEventNames = [...]string{
	"unknown", "audio", "utterance_done", "caller_started", "caller_stopped",
	"caller_text", "assistant_text", "usage", "tool_call", "error",
}

func (t SpeechEventType) String() string {
	if int(t) < len(speechEventNames) {
		return speechEventNames[t]
	}
	return "unknown"
}

// SpeechEvent is one event from the model, in the gateway's words.
type SpeechEvent struct {
	Type SpeechEventType
	// Utterance names an utterance of the assistant (SpeechAudio,
	// SpeechUtteranceDone, SpeechAssistantText) or of the caller
	// (SpeechCallerStarted, SpeechCallerText), when known. Ids are never
	// reused within a session.
	Utterance string
	// Audio is assistant audio for SpeechAudio.
	Audio []byte
	Text  string // transcripts
	Final bool   // the transcript is the utterance's whole text
	Usage Usage
	Tool  ToolCall // SpeechToolCall
	Err   *ModelError
}

// Usage counts what the model reported: tokens, or session time for a
// model billed by duration.
type Usage struct {
	InputTokens  int
	OutputTokens int
	TotalTokens  int
	// Duration is session time, for a model billed by duration (GPT-Live);
	// zero for models billed by tokens.
	Duration time.Duration
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		InputTokens:  u.InputTokens + o.InputTokens,
		OutputTokens: u.OutputTokens + o.OutputTokens,
		TotalTokens:  u.TotalTokens + o.TotalTokens,
		Duration:     u.Duration + o.Duration,
	}
}

// ModelError is an error the model reported. Most leave the session open;
// fatal ones end it. Fatal is set when the model's protocol marks the error
// as fatal; a model that just closes the session after a fatal error
// leaves it unset, and the end of the session follows.
type ModelError struct {
	Type    string // the model's kind of error, e.g. "invalid_request_error"
	Code    string // the model's code, when it gives one
	Message string
	Fatal   bool
}

func (e *ModelError) Error() string {
	if e.Code != "" {
		return "model error " + e.Code + ": " + e.Message
	}
	return "model error " + e.Type + ": " + e.Message
}

// SessionEnded says why a speech session or a telephony stream ended. It is
// wrapped together with ErrClosed in the error Recv returns.
type SessionEnded struct {
	// Reason is a short machine-friendly reason ("remote_closed",
	// "session_limit", "fatal_error", "local_close", "caller_hangup", ...).
	Reason string
	// Code is the WebSocket close code when there was one.
	Code int
	// After is how long the session lasted, when the adapter knows.
	After time.Duration
}

func (e *SessionEnded) Error() string { return "ended: " + e.Reason }
