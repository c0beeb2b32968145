package ports

import "context"

// ChatAssistant answers text messages within a per-user conversation thread
// (OpenAI Responses + Conversations, or the Assistants API v2).
//
// Implementations are safe for concurrent use across threads. The caller
// guarantees that at most one Reply runs at a time on one thread (see
// UserLocks.LockUser); implementations need not serialize per thread.
type ChatAssistant interface {
	// NewThread creates an empty conversation thread and returns its id
	// (a "conv_..." or "thread_..." id). Errors: ErrUnavailable,
	// ErrRejected.
	NewThread(ctx context.Context) (string, error)

	// Reply adds the user's text to the thread and returns the assistant's
	// answer. It blocks until the answer is complete, which can take many
	// seconds; cancelling ctx abandons the wait (and, where the backend
	// allows it, the run). When the model calls one of req.Tools, Reply
	// runs it with req.RunTool and gives the model its result, for at most
	// req.MaxToolRounds rounds (DefaultMaxToolRounds when zero); past that
	// the run ends with ErrAssistantFailed. Errors: ErrNotFound (no such
	// thread), ErrAssistantFailed (the run ended without an answer),
	// ErrUnavailable, ErrRejected (also: MCP servers on a backend that
	// cannot host them).
	Reply(ctx context.Context, req ChatRequest) (string, error)
}

// ChatRequest is one message to answer.
type ChatRequest struct {
	ThreadID string
	Text     string
	// Tools the model may call, run by RunTool (required when Tools is not
	// empty); MCP the servers it may use by itself.
	Tools         []ToolSpec
	MCP           []MCPServer
	RunTool       func(ctx context.Context, call ToolCall) ToolResult
	MaxToolRounds int
}

// DefaultMaxToolRounds bounds the tool rounds of one Reply.
const DefaultMaxToolRounds = 5
