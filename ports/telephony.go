package ports

import "context"

// TelephonyChannel is one call's bidirectional media stream (a Twilio Media
// Stream). Audio is 8 kHz mu-law, base64-encoded exactly as on the wire.
//
// Send methods may be called from several goroutines at once; Recv must be
// called from one goroutine at a time. After Close every method returns an
// error wrapping ErrClosed.
type TelephonyChannel interface {
	// Recv blocks until the next event from the telephony side, ctx is
	// done, or the stream ends. When the stream ends (the peer closed the
	// socket or Close was called) it returns an error wrapping ErrClosed
	// and a *SessionEnded. A "stop" event is returned as a CallStop event
	// first. Malformed, unknown and oversized frames are skipped and
	// logged, not returned. The event's Payload is valid until the next
	// Recv.
	Recv(ctx context.Context) (CallEvent, error)

	// SendAudio queues assistant audio (base64 mu-law) for playback. The
	// bytes are written before it returns, so the caller may reuse audio.
	SendAudio(ctx context.Context, audio []byte) error

	// SendMark asks the telephony side to echo a CallMark event named name
	// when all audio sent before it has played (or at once after a Clear).
	SendMark(ctx context.Context, name string) error

	// Clear flushes all audio queued for playback.
	Clear(ctx context.Context) error

	// Close ends the stream, and with it the call when nothing follows the
	// stream. reason is a short machine-friendly reason; policy selects a
	// policy-violation close (WebSocket 1008) rather than a normal one. It
	// is safe to call more than once and from any goroutine; it makes a
	// blocked Recv return.
	Close(reason string, policy bool) error

	// Skipped returns how many frames from the telephony side Recv has
	// skipped so far (malformed, unknown, or media that is not usable
	// audio). It never blocks, is safe to call from any goroutine, and
	// keeps its value after the stream has ended, so that a call's summary
	// can read it after Close.
	Skipped() int
}

// CallEventType tells the kinds of CallEvent apart.
type CallEventType uint8

// The events of a media stream, as Twilio names them.
const (
	CallUnknown   CallEventType = iota
	CallConnected               // the socket is up (no stream yet)
	CallStart                   // stream metadata: StreamSid, CallSid, Params
	CallMedia                   // caller audio: Payload, TimestampMs
	CallMark                    // a mark we sent was echoed: Mark
	CallDTMF                    // a key was pressed: Digit
	CallStop                    // the call ended
)

var callEventNames = [...]string{"unknown", "connected", "start", "media", "mark", "dtmf", "stop"}

func (t CallEventType) String() string {
	if int(t) < len(callEventNames) {
		return callEventNames[t]
	}
	return "unknown"
}

// CallEvent is one event from the telephony side.
type CallEvent struct {
	Type       CallEventType
	Seq        int64 // Twilio sequenceNumber
	StreamSid  string
	CallSid    string
	AccountSid string
	// Params are the custom parameters of the start event
	// (<Parameter name value>).
	Params map[string]string
	// MediaFormat of the start event, e.g. "audio/x-mulaw", 8000, 1.
	Encoding   string
	SampleRate int
	Channels   int
	// TimestampMs is the media position of a CallMedia chunk, in
	// milliseconds from the start of the stream.
	TimestampMs int64
	// Payload is base64-encoded mu-law for CallMedia.
	Payload []byte
	Mark    string // CallMark
	Digit   string // CallDTMF
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
