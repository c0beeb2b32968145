package realtimesim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/convgateway/gateway/ports"
)

// declare reads session.update's tools and tool_choice into conf. It
// returns what the API would refuse, or "".
func declare(conf *Config, tools []toolDecl, choice json.RawMessage) string {
	for i, t := range tools {
		switch t.Type {
		case "function":
			if t.Name == "" {
				return fmt.Sprintf("Missing required parameter: 'session.tools[%d].name'.", i)
			}
			conf.Tools = append(conf.Tools, ports.ToolSpec{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
		case "mcp":
			if t.ServerLabel == "" {
				return fmt.Sprintf("Missing required parameter: 'session.tools[%d].server_label'.", i)
			}
			m := ports.MCPServer{Label: t.ServerLabel, URL: t.ServerURL, AllowedTools: t.AllowedTools, Headers: t.Headers}
			_ = json.Unmarshal(t.RequireApproval, &m.RequireApproval) // a setting; a filter object is left out
			conf.MCP = append(conf.MCP, m)
		default:
			return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'function' and 'mcp'.", t.Type)
		}
	}
	if len(choice) > 0 {
		var mode string
		if json.Unmarshal(choice, &mode) != nil {
			mode = string(choice)
		}
		conf.ToolChoice = mode
	}
	return ""
}

// CallTool makes the model call a function as the GA API does: a
// response (response.created) whose function_call item is added
// (response.output_item.added), its arguments streamed
// (response.function_call_arguments.delta, then done with the call's name
// and whole arguments), the item done (response.output_item.done), then
// response.done with the item as output. The call waits for the client's
// function_call_output, which ToolResults returns. call.ID is the call_id
// (one of the session's own when empty); call.Arguments must be JSON
// ("{}" when empty). A response.cancel or a barge-in arriving meanwhile
// ends the response early (cancelled, the item incomplete).
func (s *Session) CallTool(ctx context.Context, call ports.ToolCall) error {
	args := string(call.Arguments)
	if args == "" {
		args = "{}"
	}
	if call.ID == "" {
		call.ID = s.nextID("call")
	}
	r := s.begin(s.nextID("resp"))
	released := false
	defer func() {
		if !released {
			s.inactive(r)
			close(r.done)
		}
	}()
	if err := s.start(ctx, r); err != nil {
		return err
	}
	item := functionCallItem{ID: s.nextID("item"), Object: "realtime.item", Type: "function_call",
		Status: "in_progress", Name: call.Name, CallID: call.ID}
	s.mu.Lock()
	s.calls[call.ID] = call.Name // in the conversation from now on
	s.mu.Unlock()
	if err := s.send(ctx, outputItemEvent{EventID: s.nextID("event"), Type: "response.output_item.added", ResponseID: r.id, Item: item}); err != nil {
		return err
	}
	for _, piece := range halves(args) {
		if r.cancelled() {
			break
		}
		if err := s.send(ctx, argumentsEvent{EventID: s.nextID("event"), Type: "response.function_call_arguments.delta",
			ResponseID: r.id, ItemID: item.ID, CallID: call.ID, Delta: &piece}); err != nil {
			return err
		}
	}
	item.Status = "incomplete"
	if !r.cancelled() {
		item.Status, item.Arguments = "completed", args
		if err := s.send(ctx, argumentsEvent{EventID: s.nextID("event"), Type: "response.function_call_arguments.done",
			ResponseID: r.id, ItemID: item.ID, CallID: call.ID, Name: &call.Name, Arguments: &args}); err != nil {
			return err
		}
	}
	if err := s.send(ctx, outputItemEvent{EventID: s.nextID("event"), Type: "response.output_item.done", ResponseID: r.id, Item: item}); err != nil {
		return err
	}
	released = true
	return s.end(ctx, r, []any{item}, 5+len(args)/4)
}

// halves cuts s in two pieces of whole characters (one when short), as
// the arguments stream.
func halves(s string) []string {
	mid := len(s) / 2
	for mid > 0 && !utf8.RuneStart(s[mid]) {
		mid--
	}
	if mid == 0 {
		return []string{s}
	}
	return []string{s[:mid], s[mid:]}
}

// createItem answers conversation.item.create. A function_call_output is
// recorded (ToolResults) when it answers a call the model made, and
// refused with an error otherwise, as by the API; other items are
// acknowledged and forgotten.
func (s *Session) createItem(ctx context.Context, e clientEvent) {
	id := s.nextID("item")
	if e.Item.Type != "function_call_output" {
		_ = s.send(ctx, itemAddedEvent{EventID: s.nextID("event"), Type: "conversation.item.added", Item: struct {
			ID     string `json:"id"`
			Object string `json:"object"`
			Type   string `json:"type"`
		}{id, "realtime.item", e.Item.Type}})
		return
	}
	s.mu.Lock()
	_, known := s.calls[e.Item.CallID]
	if known {
		r := ports.ToolResult{CallID: e.Item.CallID, Output: e.Item.Output}
		s.results = append(s.results, r)
		s.unanswered = append(s.unanswered, r)
	}
	s.mu.Unlock()
	if !known {
		_ = s.sendError(ctx, "invalid_request_error", "",
			"Tool call ID '"+e.Item.CallID+"' not found in conversation.", e.EventID)
		return
	}
	_ = s.send(ctx, itemAddedEvent{EventID: s.nextID("event"), Type: "conversation.item.added", Item: outputItem{
		ID: id, Object: "realtime.item", Type: "function_call_output", Status: "completed", CallID: e.Item.CallID, Output: e.Item.Output}})
}

// responseCreate answers response.create: refused with
// conversation_already_has_active_response while a response is active, as
// by the API; with Options.Auto, answered with the scripted reply.
func (s *Session) responseCreate(ctx context.Context, e clientEvent) {
	s.mu.Lock()
	s.responses++
	busy := s.active != nil
	if busy {
		s.refused++
	}
	s.mu.Unlock()
	if busy {
		_ = s.sendError(ctx, "invalid_request_error", "conversation_already_has_active_response",
			"Conversation already has an active response in progress. Wait until the response is finished before creating a new one.", e.EventID)
		return
	}
	if s.srv.opts.Auto != nil {
		s.autoReply(ctx)
	}
}

// toolOutputs is what the Auto reply says with Auto.SayToolOutputs: the
// outputs of the tool results received since a response last began,
// joined by spaces; "" when there are none. s.mu is held.
func (s *Session) toolOutputs() string {
	var outputs []string
	for _, r := range s.unanswered {
		outputs = append(outputs, r.Output)
	}
	return strings.Join(outputs, " ")
}

// ToolResults returns the function_call_output items received for calls
// the model made, in order (Output as sent: a failed run's error is in
// it, as the client wrote it).
func (s *Session) ToolResults() []ports.ToolResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.ToolResult(nil), s.results...)
}

// Refused counts the response.create events refused because a response
// was active.
func (s *Session) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}
