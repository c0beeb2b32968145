// Package httptool implements ports.ToolRunner over HTTP: the user's tools,
// each a URL the gateway POSTs a call to.
//
// The request is JSON, with Content-Type application/json:
//
//	{"tool": "check_availability", "arguments": {...}, "channel": "voice", "call_sid": "CA..."}
//
// "arguments" is the JSON object the model wrote; "channel" is "voice",
// "whatsapp" or "sms"; a voice call carries "call_sid" (the phone call's
// id), a chat "user" (the user's address, such as "whatsapp:+1555...")
// instead. Every request is signed with the runner's secret
// (TOOLS_SIGNING_SECRET): the header
//
//	X-Gateway-Signature: sha256=<hex of HMAC-SHA256(secret, raw request body)>
//
// lets the tool's server check that the gateway sent it (README.md, "Your
// tools over HTTP", has a verification snippet).
//
// A 2xx answer's body, JSON or text, is the tool's output, given to the
// model as is, up to MaxOutput bytes: a longer body is cut there (at a
// character boundary) and CutMark is appended. Redirects are not followed.
// No answer within the tool's timeout, any other status, or a connection
// that fails is ports.ErrUnavailable, with a short text the model may read
// ("tool check_availability: no answer within 5s"), never the tool's URL.
//
// The runner logs one line per run: the tool's name, its HTTP status (or
// what went wrong, without the URL) and the run's duration, at info level
// ("tool ran", or "tool cancelled" when the caller's context ended) or warn
// ("tool failed"); the arguments only at debug level; the output, the URL
// and the secret never.
package httptool
