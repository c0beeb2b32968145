// Package twiliorest simulates the parts of Twilio's REST API the gateway
// uses, on a loopback httptest server, for tests and demos: point
// TWILIO_API_BASE_URL at URL(). It serves the Messages endpoint (POST
// /2010-04-01/Accounts/{AccountSid}/Messages.json) and updates of live
// calls (POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json).
//
// It checks HTTP Basic authentication (AccountSid:AuthToken; 401 with error
// 20003 otherwise) on both.
//
// Messages: it validates the form like Twilio (To; From or
// MessagingServiceSid; Body or ContentSid; at most 1,600 characters),
// records accepted messages in order and answers 201 with a message
// resource ("SM..." sid, status "queued"). Tests script failures (a status
// with a Twilio error code, for example 400/63016 outside the WhatsApp
// 24-hour window, 400/21211 for a bad number, 429/20429 with a Retry-After
// header, or a 500), a message accepted whose response is lost (the
// connection closed without an answer), delays, and a server that refuses
// connections (nothing listens on its port) until it listens again. Every
// request is recorded with the time it arrived and the status it got.
//
// Calls: every call sid names a call in progress, until an update with
// Status=completed ends it, the test ends it (CompleteCall: the caller hung
// up) or makes it unknown (ForgetCall). An update (Status, Twiml or Url)
// of a call in progress is recorded (CallUpdates, WaitCallUpdates; Dial
// reads the <Dial> of its TwiML) and answered 200 with the call resource;
// one of a call that is over gets a 400 with error 21220, one of an
// unknown call a 404 with error 20404. Failures are scripted apart from
// the messages' (FailNextCallUpdate); delays and refused connections
// apply to both.
//
// A Server is safe for concurrent use. The package uses the standard
// library only, so that binaries may link it.
package twiliorest
