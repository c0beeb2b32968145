// Package twiliorest simulates Twilio's Messages REST API (POST
// /2010-04-01/Accounts/{AccountSid}/Messages.json) on a loopback httptest
// server, for tests and demos: point TWILIO_API_BASE_URL at URL().
//
// It checks HTTP Basic authentication (AccountSid:AuthToken; 401 with error
// 20003 otherwise), validates the form like Twilio (To; From or
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
// A Server is safe for concurrent use.
package twiliorest
