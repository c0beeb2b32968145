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
	// allows it, the run). Errors: ErrNotFound (no such thread),
	// ErrAssistantFailed (the run ended without an answer), ErrUnavailable,
	// ErrRejected.
	Reply(ctx context.Context, threadID, text string) (string, error)
}
