package ports

import "context"

// TelephonyChannel is one phone call's media, seen from the gateway: the
// caller's audio in, the assistant's audio out, and what the telephony side
// says about the call (its start, how much of the assistant's audio has
// played, keys pressed, its end). How the provider carries it (a Twilio
// Media Stream: stream sids, marks, WebSocket close codes) stays inside the
// adapter.
//
// Audio travels base64-encoded in the channel's Format, exactly as the
// wire carries it, so that audio passes through untouched when the speech
// side shares the format.
//
// Send methods (Play, Clear) may be called from several goroutines at once;
// Recv must be called from one goroutine at a time. After End, or once the
// call is over, every method returns an error wrapping ErrClosed.
type TelephonyChannel interface {
	// Format is the format of the audio in both directions. It never
	// changes and never blocks.
	Format() AudioFormat

	// Recv blocks until the next event from the telephony side, ctx is
	// done, or the call's media ends. When it ends (the caller hung up, the
	// provider closed it, or End was called) Recv returns an error wrapping
	// ErrClosed and a *SessionEnded; a hang-up announced by the provider is
	// returned as a CallHungUp event first. Malformed, unknown and
	// oversized frames are skipped and counted (Skipped), never returned.
	// The event's Audio is valid until the next Recv.
	Recv(ctx context.Context) (CallEvent, error)

	// Play queues assistant audio for playback after what is already
	// queued. The bytes are written before it returns, so the caller may
	// reuse audio. Once the audio has played (or was cleared) the channel
	// reports it with a CallPlayed event. It blocks only while the
	// connection is congested; errors: ErrClosed, ctx's error.
	Play(ctx context.Context, audio []byte) error

	// Clear discards the audio queued and not played yet: the caller stops
	// hearing the assistant at once. Audio cleared counts as done for
	// CallPlayed, so the played position catches up with what Play was
	// given, without the caller having heard it.
	Clear(ctx context.Context) error

	// End ends the call's media, and with it the call when nothing
	// follows, for the given reason. It is safe to call more than once and
	// from any goroutine (the first reason wins); it makes a blocked Recv
	// return.
	End(reason EndReason) error

	// Skipped returns how many frames from the telephony side Recv has
	// skipped so far (malformed, unknown, or media that is not usable
	// audio). It never blocks, is safe to call from any goroutine, and
	// keeps its value after the call has ended, so that a summary can read
	// it after End.
	Skipped() int
}

// EndReason says why the gateway ends a call's media.
type EndReason uint8

// The reasons the gateway ends a call's media.
const (
	// EndCompleted: the conversation is over (either side hung up, or the
	// gateway ended the call politely).
	EndCompleted EndReason = iota
	// EndRefused: the call's media was not admitted (a missing, unknown,
	// expired or reused token): the provider is told it broke the rules.
	EndRefused
	// EndFailed: the gateway could not carry on (the speech model is
	// unavailable, the media stalled, the gateway is shutting down).
	EndFailed
)

var endReasonNames = [...]string{"completed", "refused", "failed"}

func (r EndReason) String() string {
	if int(r) < len(endReasonNames) {
		return endReasonNames[r]
	}
	return "unknown"
}

// CallEventType tells the kinds of CallEvent apart.
type CallEventType uint8

// The events of a call's media.
const (
	CallUnknown CallEventType = iota
	// CallStarted: the media began; Call says whose call it is. It comes
	// first, once.
	CallStarted
	// CallAudio: caller audio (Audio) at media position MediaMs.
	CallAudio
	// CallPlayed: the assistant audio given to Play up to PlayedMs
	// milliseconds (counted from the call's first Play) has played or was
	// cleared. Positions never go backwards.
	CallPlayed
	// CallKey: the caller pressed a key of the keypad (Key).
	CallKey
	// CallHungUp: the provider says the call is over.
	CallHungUp
)

var callEventNames = [...]string{"unknown", "started", "audio", "played", "key", "hung_up"}

func (t CallEventType) String() string {
	if int(t) < len(callEventNames) {
		return callEventNames[t]
	}
	return "unknown"
}

// CallInfo says whose call a channel carries: the provider's id of the
// call, the two numbers and the custom parameters the answer passed to the
// media (the stream token among them).
type CallInfo struct {
	CallID string
	From   string
	To     string
	Params map[string]string
}

// CallEvent is one event from the telephony side.
type CallEvent struct {
	Type CallEventType
	// Call is set for CallStarted.
	Call CallInfo
	// MediaMs is the media position of a CallAudio chunk: milliseconds
	// from the start of the call's media.
	MediaMs int64
	// Audio is caller audio for CallAudio, base64 in the channel's Format.
	Audio []byte
	// PlayedMs is the played position for CallPlayed.
	PlayedMs int64
	// Key is the key pressed for CallKey: one of 0-9, * and #, or what the
	// provider sent when it is not a key.
	Key string
}

// MessageSender sends text messages to users (WhatsApp or SMS through the
// Twilio Messages API). Safe for concurrent use.
type MessageSender interface {
	// Send delivers msg and returns the provider's message id (a Twilio
	// MessageSid). It blocks until the provider accepted or refused the
	// message, or ctx is done. A refusal the provider asks to be retried
	// (rate limited) and a failure to reach it at all (no connection: the
	// request never left) are retried with a backoff, within a bound the
	// implementation documents; a request that may have been acted on is
	// never repeated.
	//
	// Errors, and whether the message was sent:
	//   - ErrRejected (bad number, outside the 24-hour window without a
	//     template, body too long): not sent;
	//   - ErrUnavailable alone (rate limited, or unreachable, until the
	//     retries gave up): not sent;
	//   - ErrUnavailable with ErrOutcomeUnknown (a server error, a timeout
	//     or a connection cut after the request was sent, an answer that
	//     cannot be read): the message may or may not have been sent;
	//   - ctx's error: the message may or may not have been sent.
	Send(ctx context.Context, msg OutboundMessage) (string, error)

	// Limits returns what one message, and one inline reply to an inbound
	// message (the Reply of Messages.Handle), may carry on the provider's
	// channel: the caller splits longer text into several messages and
	// sends a reply that would carry more through Send instead. It does
	// not block, returns the same limits every time, and every field is
	// positive.
	Limits() MessageLimits
}

// MessageLimits are a messaging channel's limits on what messages carry.
type MessageLimits struct {
	// MaxChars is the most characters (Unicode code points) of one
	// message's Body: Send refuses a longer Body with ErrRejected.
	MaxChars int
	// MaxReplyMessages is the most messages one inline reply may hold:
	// the provider drops the others.
	MaxReplyMessages int
	// MaxReplyBytes is the most bytes of text, all its messages
	// together, one inline reply may carry: the provider may refuse a
	// larger one whole.
	MaxReplyBytes int
}

// OutboundMessage is a message to send. Exactly one of Body and ContentSID
// is set.
type OutboundMessage struct {
	To   string // "whatsapp:+15551234567" or "+15551234567"
	From string // the gateway's sender; empty means the configured default
	Body string
	// ContentSID and ContentVariables send an approved template.
	ContentSID       string
	ContentVariables map[string]string
}
