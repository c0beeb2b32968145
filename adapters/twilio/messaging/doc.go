// Package messaging implements ports.MessageSender with Twilio's Messages
// REST API (twilio-go): WhatsApp and SMS messages, as free text (Body) or as
// approved templates (ContentSid and ContentVariables).
//
// twilio-go's REST client has a fixed base URL and takes no context. The
// Sender therefore builds a light client per message whose HTTP transport
// sends the request to the configured base URL (TWILIO_API_BASE_URL, for
// simulators and proxies) and binds it to the message's context, so that
// cancelling the context aborts the request.
package messaging
