package porttest

import (
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// SpeechHarness is a SpeechModel under test together with the far side it
// talks to.
type SpeechHarness struct {
	Model ports.SpeechModel
	Peer  peer.Speech
}

// TelephonyHarness is a TelephonyChannel under test together with the far
// side (the caller's telephony provider).
type TelephonyHarness struct {
	Channel ports.TelephonyChannel
	Peer    peer.Telephony
}

// ChatHarness is a ChatAssistant under test. The implementation must be set
// up so that its reply to a message contains the message text (the fakes
// and the REST simulator echo by default).
type ChatHarness struct {
	Assistant ports.ChatAssistant
	// FailNext makes the next Reply end with ErrAssistantFailed. Nil when
	// the implementation cannot be made to fail; the subtest is skipped.
	FailNext func()
	// CallToolNext makes the model of the next Reply call the tool call
	// (once per round, for rounds rounds), then answer with a message that
	// contains the last tool output it received.
	CallToolNext func(call ports.ToolCall, rounds int)
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
