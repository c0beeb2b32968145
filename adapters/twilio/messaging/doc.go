// Package messaging implements ports.MessageSender with Twilio's Messages
// REST API (twilio-go): WhatsApp and SMS messages, as free text (Body) or as
// approved templates (ContentSid and ContentVariables). The Sender also
// reports Twilio's limits on messages (Limits): the length of one body and
// what one TwiML reply to an incoming message may carry.
//
// twilio-go's REST client has a fixed base URL and takes no context. The
// Sender therefore builds a light client per request whose HTTP transport
// sends the request to the configured base URL (TWILIO_API_BASE_URL, for
// simulators and proxies) and binds it to the message's context, so that
// cancelling the context aborts the request; errors name that URL, not
// the one twilio-go built.
//
// The transport also notes what the Sender needs to tell a request Twilio
// did not take (a 429, or no connection at all: retried with a backoff,
// within a bound) from one Twilio may have acted on (a 5xx, or a failure
// after the request was sent: never repeated, reported as an unknown
// outcome, ports.ErrOutcomeUnknown).
package messaging
