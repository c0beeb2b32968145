// Package fake provides hand-written fakes of every port, for tests: a
// SpeechModel and a Telephony channel driven from the test through their
// peers, a ChatAssistant, a MessageSender, a ThreadStore (which is also the
// DeliveryLedger, Leases and UserLocks) and a TokenStore on the driven side,
// and Calls and Messages on the driving side (for tests of the HTTP
// adapter).
//
// Every fake is safe for concurrent use, records what it was sent, can be
// scripted (queued replies, injected errors, delays) and passes its port's
// conformance suite in package porttest. Tests wait for what a fake received
// with its Wait methods, which block until a condition holds or the context
// ends, never by sleeping.
package fake
