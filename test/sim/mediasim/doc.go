// Package mediasim simulates Twilio's side of a bidirectional Media Stream:
// a caller that dials the gateway's /media-stream WebSocket, sends
// connected, start, media, dtmf and stop frames exactly as Twilio does, and
// plays back what the gateway sends with Twilio's semantics (audio queued
// and played at real time, 8 bytes per millisecond; a mark echoed once the
// audio before it has played; clear flushes the queue and echoes pending
// marks at once).
//
// It records what it received, what it played and when, for tests, the
// demo and the load test (which may write the played audio to a WAV file
// with package mulaw). A Caller implements peer.Telephony, the far side
// that the conformance suite of ports.TelephonyChannel drives; the package
// imports no test library.
package mediasim
