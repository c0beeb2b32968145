package fake

import (
	"context"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// SpeechPeer is the model side of a fake SpeechModel as a peer.Speech:
// each method acts on the session opened most recently, waiting for one to
// open where it must.
type SpeechPeer struct{ m *SpeechModel }

// WaitSession blocks until a session is open and returns its configuration.
func (p SpeechPeer) WaitSession(ctx context.Context) (ports.SpeechConfig, error) {
	s, err := p.m.latest(ctx)
	if err != nil {
		return ports.SpeechConfig{}, err
	}
	return s.cfg, nil
}

func (p SpeechPeer) now() SpeechSent {
	ss := p.m.Sessions()
	if len(ss) == 0 {
		return SpeechSent{}
	}
	return ss[len(ss)-1].Sent()
}

// ReceivedAudio returns the latest session's audio chunks.
func (p SpeechPeer) ReceivedAudio() [][]byte { return p.now().Audio }

// Responds counts the latest session's Respond requests.
func (p SpeechPeer) Responds() int { return len(p.now().Responses) }

// Heard returns what the latest session was told the caller heard.
func (p SpeechPeer) Heard() []peer.Heard { return p.now().Heard }

// ToolResults returns the tool results the latest session was given.
func (p SpeechPeer) ToolResults() []ports.ToolResult { return p.now().ToolResults }

// CallTool makes the latest session's model ask for a tool call (see
// SpeechSession.CallTool).
func (p SpeechPeer) CallTool(ctx context.Context, call ports.ToolCall) error {
	return p.on(ctx, func(s *SpeechSession) error { return s.CallTool(ctx, call) })
}

// Say makes the latest session speak (see SpeechSession.Say).
func (p SpeechPeer) Say(ctx context.Context, transcript string, chunks ...[]byte) error {
	return p.on(ctx, func(s *SpeechSession) error { return s.Say(ctx, transcript, chunks...) })
}

// CallerSpeaks makes the latest session hear the caller.
func (p SpeechPeer) CallerSpeaks(ctx context.Context, text string) error {
	return p.on(ctx, func(s *SpeechSession) error { return s.CallerSpeaks(ctx, text) })
}

// Fail sends an error event on the latest session.
func (p SpeechPeer) Fail(ctx context.Context, e ports.ModelError) error {
	return p.on(ctx, func(s *SpeechSession) error { return s.Fail(ctx, e) })
}

// Hangup ends the latest session from the model's side.
func (p SpeechPeer) Hangup(ctx context.Context) error {
	return p.on(ctx, func(s *SpeechSession) error { return s.Hangup(ctx) })
}

// on runs step on the latest session, once one is open.
func (p SpeechPeer) on(ctx context.Context, step func(*SpeechSession) error) error {
	s, err := p.m.latest(ctx)
	if err != nil {
		return err
	}
	return step(s)
}
