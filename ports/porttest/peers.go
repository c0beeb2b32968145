package porttest

import (
	"context"

	"github.com/convgateway/gateway/ports"
)

// SpeechHarness is a SpeechModel under test together with the far side it
// talks to.
type SpeechHarness struct {
	Model ports.SpeechModel
	Peer  SpeechPeer
}

// SpeechPeer is the model side of a SpeechModel under test: a fake's script
// or a Realtime simulator. Its methods act on the session opened most
// recently.
type SpeechPeer interface {
	// WaitSession blocks until a session is open and configured, and
	// returns the configuration the peer received.
	WaitSession(ctx context.Context) (ports.SpeechConfig, error)
	// ReceivedAudio returns the caller audio frames received so far, in
	// order, each as the base64 text the client sent.
	ReceivedAudio() [][]byte
	// ReceivedTexts returns the user texts received (SendText), in order.
	ReceivedTexts() []string
	// ResponseRequests counts RequestResponse calls received.
	ResponseRequests() int
	// Truncations returns the truncations received, in order.
	Truncations() []Truncation
	// Cancels counts Cancel calls received.
	Cancels() int
	// Say makes the model answer: response.created, then one assistant
	// item whose audio is the given base64 chunks as deltas, then its
	// transcript text, then response.done with usage.
	Say(ctx context.Context, responseID, itemID, transcript string, chunks ...[]byte) error
	// StartSpeech makes the model report that the caller started speaking.
	StartSpeech(ctx context.Context, itemID string, audioStartMs int) error
	// Fail sends an error event; fatal ones also end the session.
	Fail(ctx context.Context, e ports.ModelError) error
	// Hangup ends the session from the model side.
	Hangup(ctx context.Context) error
}

// Truncation is one conversation.item.truncate received by a peer.
type Truncation struct {
	ItemID     string
	AudioEndMs int
}

// TelephonyHarness is a TelephonyChannel under test together with the far
// side (the caller's telephony provider).
type TelephonyHarness struct {
	Channel ports.TelephonyChannel
	Peer    TelephonyPeer
}

// TelephonyPeer is the provider side of a TelephonyChannel under test: a
// fake's script or a Twilio Media Streams simulator.
type TelephonyPeer interface {
	// Start sends connected and start events with the given custom
	// parameters.
	Start(ctx context.Context, callSid, streamSid string, params map[string]string) error
	// Media sends one chunk of caller audio (base64 mu-law) at the given
	// stream position.
	Media(ctx context.Context, timestampMs int64, payload []byte) error
	// DTMF sends a key press.
	DTMF(ctx context.Context, digit string) error
	// SendMalformed sends a frame the channel cannot decode, which it
	// must skip and count (TelephonyChannel.Skipped).
	SendMalformed(ctx context.Context) error
	// Stop sends the stop event (the caller hung up) and closes the stream.
	Stop(ctx context.Context) error
	// Received returns what the channel sent, in order.
	Received() []Outbound
	// Closed reports whether the channel closed the stream, and with which
	// WebSocket close code (1000 normal, 1008 policy) where that applies.
	Closed() (closed bool, code int)
}

// Outbound is one message a TelephonyChannel sent to its peer.
type Outbound struct {
	Kind  string // "media", "mark" or "clear"
	Audio []byte // base64 payload for "media"
	Mark  string // name for "mark"
}

// CountKind returns how many of out are of kind ("media", "mark" or
// "clear").
func CountKind(out []Outbound, kind string) int {
	n := 0
	for _, f := range out {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// ChatHarness is a ChatAssistant under test. The implementation must be set
// up so that its reply to a message contains the message text (the fakes
// and the REST simulator echo by default).
type ChatHarness struct {
	Assistant ports.ChatAssistant
	// FailNext makes the next Reply end with ErrAssistantFailed. Nil when
	// the implementation cannot be made to fail; the subtest is skipped.
	FailNext func()
}

// SenderHarness is a MessageSender under test together with the provider
// side that records what arrived.
type SenderHarness struct {
	Sender ports.MessageSender
	// Sent returns what the provider accepted, in order.
	Sent func() []ports.OutboundMessage
	// RejectNext makes the provider refuse the next message (a 4xx).
	RejectNext func()
	// RateLimitNext makes the provider refuse the next request as rate
	// limited, asking for a retry (a 429): the sender retries it.
	RateLimitNext func()
	// LoseNext makes the provider accept the next message and its answer
	// get lost (the connection cut after the request was sent): the
	// sender cannot know, and must not send it again.
	LoseNext func()
}
