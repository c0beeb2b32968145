package ports

import "context"

// Calls is the phone-call use case, driven by the HTTP adapter.
//
// Safe for concurrent use: every call is independent.
type Calls interface {
	// Answer decides what to do with an incoming call whose webhook
	// signature was already checked. It either rejects the call or mints a
	// stream token (and may start opening the speech session ahead of the
	// stream). Errors: ErrUnavailable when the token store is down.
	Answer(ctx context.Context, call IncomingCall) (CallAnswer, error)

	// Serve runs one media stream from its first event to its end: it
	// checks the start event's token, bridges audio both ways and closes ch
	// before it returns. It blocks for the length of the call; cancelling
	// ctx ends the call. It returns nil for a normal ending (either side
	// hung up) and an error for anything else, already logged.
	Serve(ctx context.Context, ch TelephonyChannel) error
}

// IncomingCall is the part of Twilio's voice webhook the gateway uses.
type IncomingCall struct {
	CallID     string
	AccountSid string
	From       string
	To         string
}

// CallAnswer is the decision on an incoming call.
type CallAnswer struct {
	// Reject the call (<Reject/>): the caller is not allowed.
	Reject bool
	// Token to pass to the media stream as <Parameter name="token">.
	Token string
}

// Messages is the WhatsApp/SMS use case, driven by the HTTP adapter.
//
// Safe for concurrent use.
type Messages interface {
	// Handle processes one inbound message whose webhook signature was
	// already checked. It blocks at most for the configured inline-reply
	// timeout: when the answer is ready by then it is returned to be sent
	// inline, otherwise Handle returns an empty Reply and the answer is
	// delivered later through the MessageSender. A duplicate delivery
	// returns an empty Reply and does nothing else. Handle never returns
	// internal error text meant for the user: failures become a polite
	// Reply and a logged error; the error return is for the HTTP status
	// (ErrInvalidInput for a form that is not a message).
	Handle(ctx context.Context, msg InboundMessage) (Reply, error)
}

// InboundMessage is the part of Twilio's messaging webhook the gateway uses.
type InboundMessage struct {
	MessageSid string
	// IdempotencyKey is Twilio's I-Twilio-Idempotency-Token header, when
	// present.
	IdempotencyKey string
	AccountSid     string
	From           string // "whatsapp:+15551234567" or "+15551234567" (SMS)
	To             string
	Body           string
	NumMedia       int
	ProfileName    string
	WaID           string
}

// Reply is what to answer inline: zero or more messages, in order.
type Reply struct {
	Messages []string
}
