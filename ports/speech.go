package ports

import (
	"context"
	"time"
)

// SpeechModel opens realtime speech-to-speech sessions (OpenAI Realtime).
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

// SpeechConfig configures one realtime session.
type SpeechConfig struct {
	Instructions  string // the system message
	Voice         string // e.g. "alloy"
	TurnDetection string // "server_vad" or "semantic_vad"
	// TranscriptionModel enables transcription of the caller's audio when
	// not empty.
	TranscriptionModel string
	// CallSid is for logs and tracing only.
	CallSid string
}

// SpeechSession is one open realtime session. Audio is 8 kHz mu-law
// (audio/pcmu), carried base64-encoded exactly as on the wire so that a
// caller frame passes through without decoding.
//
// Send methods may be called from several goroutines at once; Recv must be
// called from one goroutine at a time. After Close every method returns an
// error wrapping ErrClosed.
type SpeechSession interface {
	// AppendAudio sends caller audio (base64 mu-law). The bytes are copied
	// or written before it returns, so the caller may reuse audio. Frames
	// are delivered in the order of the calls. It blocks only while the
	// connection is congested.
	AppendAudio(ctx context.Context, audio []byte) error

	// SendText adds a user text message to the conversation (it does not
	// request a response).
	SendText(ctx context.Context, text string) error

	// RequestResponse asks the model to respond now. instructions, when
	// not empty, replace the session instructions for this response only.
	RequestResponse(ctx context.Context, instructions string) error

	// Truncate tells the model that the caller heard only the first
	// audioEndMs milliseconds of the assistant item itemID.
	Truncate(ctx context.Context, itemID string, audioEndMs int) error

	// Cancel cancels the response in progress. Calling it when no response
	// is active is an error on the remote side: callers must track that.
	Cancel(ctx context.Context) error

	// Recv blocks until the next event, ctx is done, or the session ends.
	// When the session ends it returns an error wrapping ErrClosed; the
	// *SessionEnded wrapped with it (errors.As) says why. Malformed or
	// unknown events are skipped (and logged) by the adapter, never
	// returned as errors. The event's Audio is valid until the next Recv.
	Recv(ctx context.Context) (SpeechEvent, error)

	// Close ends the session and releases its resources. It is safe to call
	// more than once and from any goroutine; it makes a blocked Recv return.
	Close() error
}

// SpeechEventType tells the kinds of SpeechEvent apart.
type SpeechEventType uint8

// The speech events the gateway reacts to.
const (
	SpeechUnknown         SpeechEventType = iota
	SpeechSessionUpdated                  // the configuration was applied
	SpeechStarted                         // the caller started speaking (barge-in trigger)
	SpeechStopped                         // the caller stopped speaking
	SpeechResponseCreated                 // a response began (ResponseID)
	SpeechAudioDelta                      // assistant audio (ResponseID, ItemID, Audio)
	SpeechAudioDone                       // an assistant item's audio is complete
	SpeechAssistantText                   // transcript of an assistant item (ItemID, Text)
	SpeechCallerText                      // transcript of a caller item (ItemID, Text)
	SpeechResponseDone                    // a response ended (ResponseID, Status, Usage)
	SpeechTruncated                       // a truncation was applied (ItemID, AudioEndMs)
	SpeechError                           // the model reported an error (Err)
)

var speechEventNames = [...]string{
	"unknown", "session_updated", "speech_started", "speech_stopped",
	"response_created", "audio_delta", "audio_done", "assistant_text",
	"caller_text", "response_done", "truncated", "error",
}

func (t SpeechEventType) String() string {
	if int(t) < len(speechEventNames) {
		return speechEventNames[t]
	}
	return "unknown"
}

// SpeechEvent is one event from the model, reduced to what the gateway uses.
type SpeechEvent struct {
	Type       SpeechEventType
	ResponseID string
	ItemID     string
	// Audio is base64-encoded mu-law for SpeechAudioDelta.
	Audio []byte
	// AudioStartMs / AudioEndMs are positions in the input audio buffer
	// (SpeechStarted, SpeechStopped) or the truncation point (SpeechTruncated).
	AudioStartMs int
	AudioEndMs   int
	Text         string // transcripts
	Status       string // response status for SpeechResponseDone
	Usage        Usage
	Err          *ModelError
}

// Usage counts tokens reported by the model for one response.
type Usage struct {
	InputTokens  int
	OutputTokens int
	TotalTokens  int
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		InputTokens:  u.InputTokens + o.InputTokens,
		OutputTokens: u.OutputTokens + o.OutputTokens,
		TotalTokens:  u.TotalTokens + o.TotalTokens,
	}
}

// ModelError is an error event reported by the model. Most leave the
// session open; Fatal ones end it.
type ModelError struct {
	Type    string
	Code    string
	Message string
	EventID string // the client event that caused it, when known
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
