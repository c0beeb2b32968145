// Package peer describes the far side of the speech and telephony ports:
// what a conformance suite (ports/porttest) needs to drive a model or a
// telephony provider, and what the simulators (test/sim) and the fakes
// (adapters/fake) offer. It holds only interfaces and small types, and
// imports no test library, so that the simulators can ship in the demo and
// load tools without linking one.
package peer

import (
	"context"

	"github.com/convgateway/gateway/ports"
)

// Speech is the model side of a ports.SpeechModel under test: a fake's
// script or a simulator of the model's protocol. Its methods act on the
// session opened most recently.
type Speech interface {
	// WaitSession blocks until a session is open and configured, and
	// returns the configuration the peer received (the tools by name,
	// description and parameters as the protocol carried them).
	WaitSession(ctx context.Context) (ports.SpeechConfig, error)
	// ReceivedAudio returns the caller audio chunks received so far, in
	// order, each as the base64 text the client sent.
	ReceivedAudio() [][]byte
	// Responds counts the Respond requests received.
	Responds() int
	// Heard returns what the session was told the caller heard (Heard), in
	// order, as the model's protocol carries it. Full duplex models are
	// told nothing: their peers return none.
	Heard() []Heard
	// Say makes the model speak one utterance: the given base64 chunks as
	// its audio, then its transcript, then its usage.
	Say(ctx context.Context, transcript string, chunks ...[]byte) error
	// CallerSpeaks makes the model hear the caller say text: for a model
	// that leaves interruptions to the gateway, it reports the caller's
	// speech starting, stopping and its transcript; a full duplex model
	// just transcribes it.
	CallerSpeaks(ctx context.Context, text string) error
	// Fail sends an error; fatal ones also end the session.
	Fail(ctx context.Context, e ports.ModelError) error
	// Hangup ends the session from the model side.
	Hangup(ctx context.Context) error
	// CallTool makes the model ask for a tool call, as its protocol does.
	CallTool(ctx context.Context, call ports.ToolCall) error
	// ToolResults returns the tool results the session sent, in order.
	ToolResults() []ports.ToolResult
}

// Heard is one report of how much of an utterance the caller heard.
type Heard struct {
	Utterance string
	Ms        int
}

// Telephony is the provider side of a ports.TelephonyChannel under test:
// a fake's script or a simulator of the provider's protocol.
type Telephony interface {
	// Start begins the call's media for call.
	Start(ctx context.Context, call ports.CallInfo) error
	// Audio sends one chunk of caller audio (base64 in the channel's
	// format) at the given media position.
	Audio(ctx context.Context, mediaMs int64, audio []byte) error
	// Key sends a key press.
	Key(ctx context.Context, key string) error
	// SendMalformed sends a frame the channel cannot decode, which it must
	// skip and count (Skipped).
	SendMalformed(ctx context.Context) error
	// PlayOut plays everything queued for playback so far and reports it
	// played, as the provider does once audio has reached the caller.
	PlayOut(ctx context.Context) error
	// HangUp ends the call from the provider's side.
	HangUp(ctx context.Context) error
	// Received returns what the channel sent, in order.
	Received() []Outbound
	// Ended reports whether the channel ended the call's media and, if so,
	// for which reason, as far as the protocol carries it (a provider that
	// cannot tell a refusal from a normal end reports EndCompleted).
	Ended() (ended bool, reason ports.EndReason)
}

// OutKind tells the kinds of Outbound apart.
type OutKind uint8

// What a channel sends to its provider.
const (
	OutAudio OutKind = iota + 1 // audio to play (Audio)
	OutClear                    // discard the audio queued
)

func (k OutKind) String() string {
	switch k {
	case OutAudio:
		return "audio"
	case OutClear:
		return "clear"
	}
	return "unknown"
}

// Outbound is one thing a TelephonyChannel sent to its provider.
type Outbound struct {
	Kind  OutKind
	Audio []byte // base64 audio for OutAudio
}

// Count returns how many of out are of kind.
func Count(out []Outbound, kind OutKind) int {
	n := 0
	for _, f := range out {
		if f.Kind == kind {
			n++
		}
	}
	return n
}
