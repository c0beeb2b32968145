// Package calls implements ports.CallControl with Twilio's Calls REST API
// (twilio-go, api/v2010 UpdateCall): a live call is ended with
// Status=completed, and transferred with TwiML that dials the target
// (<Dial callerId="..."> with a <Number> or a <Sip> noun, built with
// twilio-go's twiml package). Updating a call replaces the TwiML it runs,
// so its <Connect><Stream> ends: the gateway's media stream for the call
// closes, and the verbs after <Connect> never run. When the dialled party
// hangs up, or does not answer, the call ends.
//
// Requests go to the configured base URL (TWILIO_API_BASE_URL, for
// simulators and proxies) under the caller's context, like the messaging
// sender's (see adapters/twilio/internal/restclient). A request is never
// repeated: a call is live, and a late retry would act on a moment that
// has passed.
package calls
