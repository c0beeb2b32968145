package fake

import (
	"context"
	"fmt"
	"slices"

	"github.com/convgateway/gateway/ports"
)

// ToolResult records the result (the model's side sees it in
// Sent().ToolResults), whatever call it names.
func (s *SpeechSession) ToolResult(ctx context.Context, r ports.ToolResult) error {
	return s.record(ctx, "tool result", func(sent *SpeechSent) {
		sent.ToolResults = append(sent.ToolResults, r)
	})
}

// CallTool emits the model's request to run call (SpeechToolCall), under
// a generated id when call.ID is empty, and "{}" as arguments when it has
// none.
func (s *SpeechSession) CallTool(ctx context.Context, call ports.ToolCall) error {
	if call.ID == "" {
		s.mu.Lock()
		s.said++
		call.ID = fmt.Sprintf("fake_call_%d", s.said)
		s.mu.Unlock()
	}
	if len(call.Arguments) == 0 {
		call.Arguments = []byte("{}")
	}
	call.Arguments = slices.Clone(call.Arguments)
	return s.Emit(ctx, ports.SpeechEvent{Type: ports.SpeechToolCall, Tool: call})
}

// ToolResults returns the tool results given so far (peer.Speech's).
func (s *SpeechSession) ToolResults() []ports.ToolResult { return s.Sent().ToolResults }
