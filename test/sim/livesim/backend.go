package livesim

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/convgateway/gateway/ports"
)

// The delegation's Responses backend. GPT-Live hands tasks to it; when its
// model calls a function tool, the call reaches the client inside
// response.event (a function_call item in response.output_item.done) and
// the client answers with response.item.create of a function_call_output,
// then response.create, which continues the delegation. The simulator's
// backend makes the calls it is told to (CallTool), takes their results,
// refuses a result for a call it did not make (invalid_value, param
// item.call_id) and a response.create while one of its responses is in
// progress (response_in_progress: the simulator's own code; the guides
// leave open what the API does). In Auto mode, results make the model
// speak a reply that says them.

// Refusal codes of the simulator's own, for commands the guides say need
// Responses delegation and for a response.create that comes too early.
const (
	codeNoDelegation = "responses_delegation_required"
	codeInProgress   = "response_in_progress"
)

// CallTool makes the backend call a function tool, as GPT-Live's Responses
// delegation does: session.delegation.created, then in response.event
// envelopes response.created, response.output_item.added,
// response.function_call_arguments.done, response.output_item.done (the
// function_call item) and response.completed. It returns once they are
// sent. The session must have started with Responses delegation.
func (s *Session) CallTool(ctx context.Context, call ports.ToolCall) error {
	if err := s.CallToolHeld(ctx, call); err != nil {
		return err
	}
	return s.CompleteResponse(ctx)
}

// CallToolHeld makes the backend call the tools as CallTool does, all in
// one response (parallel calls: one output item each), and leaves that
// response in progress until CompleteResponse.
func (s *Session) CallToolHeld(ctx context.Context, calls ...ports.ToolCall) error {
	s.mu.Lock()
	if s.cfg.Delegation != "responses" {
		s.mu.Unlock()
		return errors.New("livesim: call tool: the session has no Responses delegation")
	}
	if s.active != "" {
		s.mu.Unlock()
		return errors.New("livesim: call tool: a response is in progress")
	}
	delegation, resp := s.nextID("del"), s.nextID("resp")
	s.delegation, s.active = delegation, resp
	for _, c := range calls {
		s.calls[c.ID] = true
	}
	s.mu.Unlock()

	d := delegationEvent{EventID: s.nextID("event"), Type: "session.delegation.created", OffsetMs: s.timeline()}
	d.Delegation.ID, d.Delegation.Type, d.Delegation.Target, d.Delegation.ResponseID = delegation, "delegation", "responses", resp
	events := []any{s.lifecycle("response.created", resp, "in_progress")}
	for i, c := range calls {
		item := functionCall{Type: "function_call", ID: s.nextID("fc"), CallID: c.ID, Name: c.Name, Status: "in_progress"}
		args := string(c.Arguments)
		if args == "" {
			args = "{}"
		}
		added := itemEvent{Type: "response.output_item.added", SequenceNumber: s.seq.Add(1), OutputIndex: int64(i), Item: item}
		argsDone := argumentsDoneEvent{Type: "response.function_call_arguments.done", SequenceNumber: s.seq.Add(1),
			OutputIndex: int64(i), ItemID: item.ID, Arguments: args}
		item.Arguments, item.Status = args, "completed"
		done := itemEvent{Type: "response.output_item.done", SequenceNumber: s.seq.Add(1), OutputIndex: int64(i), Item: item}
		events = append(events, added, argsDone, done)
	}
	if err := s.send(ctx, d); err != nil {
		return err
	}
	return s.sendBackend(ctx, delegation, events...)
}

// CompleteResponse ends the backend's response in progress with
// response.completed; it does nothing when none is.
func (s *Session) CompleteResponse(ctx context.Context) error {
	s.mu.Lock()
	resp, delegation := s.active, s.delegation
	s.active = ""
	s.mu.Unlock()
	if resp == "" {
		return nil
	}
	return s.sendBackend(ctx, delegation, s.lifecycle("response.completed", resp, "completed"))
}

// lifecycle is a response's lifecycle event (output cleared, as GPT-Live
// sends them).
func (s *Session) lifecycle(typ, id, status string) lifecycleEvent {
	s.mu.Lock()
	model := s.cfg.BackendModel
	s.mu.Unlock()
	return lifecycleEvent{Type: typ, SequenceNumber: s.seq.Add(1), Response: backendResponse{
		ID: id, Object: "response", CreatedAt: time.Now().Unix(), Status: status, Model: model,
		AccessPrograms: accessPrograms{Cyber: "standard"}, Metadata: map[string]string{},
		Output: []any{}, ParallelToolCalls: true, Temperature: 1, ToolChoice: "auto", Tools: []any{}, TopP: 1,
	}}
}

// sendBackend sends Responses stream events, each in a response.event of
// the delegation (null when there is none).
func (s *Session) sendBackend(ctx context.Context, delegation string, events ...any) error {
	var id *string
	if delegation != "" {
		id = &delegation
	}
	for _, e := range events {
		if err := s.send(ctx, responseEvent{EventID: s.nextID("event"), Type: "response.event", DelegationID: id, Event: e}); err != nil {
			return err
		}
	}
	return nil
}

// itemCreate takes response.item.create: a function_call_output must name a
// call the backend made and has not had the result of; other items are
// taken as they are.
func (s *Session) itemCreate(ctx context.Context, e clientEvent) {
	if !s.delegated(ctx, e) || e.Item.Type != "function_call_output" {
		return
	}
	out := string(e.Item.Output)
	var text string
	if json.Unmarshal(e.Item.Output, &text) == nil {
		out = text
	}
	s.mu.Lock()
	known := s.calls[e.Item.CallID]
	if known {
		delete(s.calls, e.Item.CallID)
		s.results = append(s.results, ports.ToolResult{CallID: e.Item.CallID, Output: out})
		s.unsaid = append(s.unsaid, out)
	}
	s.mu.Unlock()
	if !known {
		s.refuse(ctx, "invalid_value", "No tool call found for function call output with call_id '"+e.Item.CallID+"'.",
			"item.call_id", e.EventID)
	}
}

// responseCreate takes response.create: refused while a response is in
// progress; else a response runs (created, then completed) and, in Auto
// mode, the model speaks the results it was given.
func (s *Session) responseCreate(ctx context.Context, e clientEvent) {
	if !s.delegated(ctx, e) {
		return
	}
	s.mu.Lock()
	if s.active != "" {
		s.mu.Unlock()
		s.refuse(ctx, codeInProgress, "A delegated response is in progress: send response.create once it has completed.", "", e.EventID)
		return
	}
	resp, delegation, unsaid := s.nextID("resp"), s.delegation, s.unsaid
	s.unsaid, s.creates = nil, s.creates+1
	s.mu.Unlock()
	if s.sendBackend(ctx, delegation, s.lifecycle("response.created", resp, "in_progress"),
		s.lifecycle("response.completed", resp, "completed")) != nil {
		return
	}
	if a := s.srv.opts.Auto; a != nil && len(unsaid) > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.speak(ctx, SaysResult(unsaid...), s.srv.reply, a.chunkEvery(), true)
		}()
	}
}

// SaysResult is what the model says, in Auto mode, of the tool results it
// was given.
func SaysResult(outputs ...string) string {
	return "Here is what I found: " + strings.Join(outputs, "; ")
}

// delegated refuses a command of the Responses backend on a session
// without Responses delegation.
func (s *Session) delegated(ctx context.Context, e clientEvent) bool {
	s.mu.Lock()
	ok := s.cfg.Delegation == "responses"
	s.mu.Unlock()
	if !ok {
		s.refuse(ctx, codeNoDelegation, e.Type+" requires Responses delegation.", "type", e.EventID)
	}
	return ok
}

// ToolResults returns the tool results the client sent, in order.
func (s *Session) ToolResults() []ports.ToolResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.ToolResult(nil), s.results...)
}

// Creates counts the response.create commands the backend accepted.
func (s *Session) Creates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creates
}

// Refusals returns the codes of the error events the simulator answered
// client events with, in order: a client that keeps the protocol gets
// none.
func (s *Session) Refusals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refusals...)
}

// refuse answers a client event with an error event and records its code.
func (s *Session) refuse(ctx context.Context, code, message, param, clientEventID string) {
	s.mu.Lock()
	s.refusals = append(s.refusals, code)
	s.mu.Unlock()
	s.sendError(ctx, "invalid_request_error", code, message, param, clientEventID)
}

// CallTool makes the newest session's backend call a tool (see
// Session.CallTool).
func (s *Server) CallTool(ctx context.Context, call ports.ToolCall) error {
	return s.on(func(sess *Session) error { return sess.CallTool(ctx, call) })
}

// ToolResults returns the tool results the newest session received.
func (s *Server) ToolResults() []ports.ToolResult {
	if sess := s.latest(); sess != nil {
		return sess.ToolResults()
	}
	return nil
}
