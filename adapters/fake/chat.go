package fake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
)

var _ ports.ChatAssistant = (*ChatAssistant)(nil)

// EchoPrefix starts the default answer of the fake ChatAssistant, which is
// EchoPrefix followed by the user's text.
const EchoPrefix = "echo: "

// ChatAssistant is a fake ports.ChatAssistant. By default it answers with
// EchoPrefix + the text; tests can queue answers and errors, add a delay,
// hold replies until released, or make the model call a tool first
// (CallToolNext). It records the requests each thread received and the tool
// results its model read, and counts overlapping replies on one thread.
// Create one with NewChatAssistant.
type ChatAssistant struct {
	mu         sync.Mutex
	threads    map[string][]ports.ChatRequest
	results    map[string][]ports.ToolResult
	replies    queue[string]
	errs       queue[error]
	threadErrs queue[error]
	tools      queue[toolScript]
	calls      int // tool calls made, for their ids
	delay      time.Duration
	gate       chan struct{} // non-nil while replies are held
	active     map[string]int
	overlaps   int
	deleted    int // threads deleted, so that new ids stay new
	changed    changes
}

// toolScript is a tool call the model makes, once per round.
type toolScript struct {
	call   ports.ToolCall
	rounds int
}

// NewChatAssistant returns an assistant that echoes at once.
func NewChatAssistant() *ChatAssistant {
	return &ChatAssistant{
		threads: make(map[string][]ports.ChatRequest),
		results: make(map[string][]ports.ToolResult),
		active:  make(map[string]int),
	}
}

// NewThread returns a new thread id ("conv_fake_N"), or the next error
// queued by FailNewThread.
func (a *ChatAssistant) NewThread(ctx context.Context) (string, error) {
	if err := errCheck(ctx, "new thread"); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err, ok := a.threadErrs.pop(); ok {
		return "", fmt.Errorf("fake: new thread: %w", err)
	}
	id := fmt.Sprintf("conv_fake_%d", len(a.threads)+a.deleted+1)
	a.threads[id] = nil
	a.changed.notify()
	return id, nil
}

// Reply records the request on the thread and answers: the next queued
// error or answer, else EchoPrefix + the text. When CallToolNext scripted a
// tool call, the model first calls it with req.RunTool (once per round) and
// the default answer is EchoPrefix + what the last result says. It waits
// for the delay set with SetDelay and for Release after Hold; cancelling
// ctx abandons the wait with an error wrapping ctx.Err(). Errors:
// ports.ErrNotFound for an unknown thread, ports.ErrRejected for tools
// without RunTool, ports.ErrAssistantFailed past req.MaxToolRounds or for a
// scripted tool the request does not offer.
func (a *ChatAssistant) Reply(ctx context.Context, req ports.ChatRequest) (string, error) {
	if err := errCheck(ctx, "reply"); err != nil {
		return "", err
	}
	if len(req.Tools) > 0 && req.RunTool == nil {
		return "", fmt.Errorf("fake: reply: tools without RunTool: %w", ports.ErrRejected)
	}
	a.mu.Lock()
	reqs, ok := a.threads[req.ThreadID]
	if !ok {
		a.mu.Unlock()
		return "", fmt.Errorf("fake: reply: thread %q: %w", req.ThreadID, ports.ErrNotFound)
	}
	a.threads[req.ThreadID] = append(reqs, req)
	a.active[req.ThreadID]++
	if a.active[req.ThreadID] > 1 {
		a.overlaps++
	}
	failure, failed := a.errs.pop()
	answer, scripted := a.replies.pop()
	tool, calls := a.tools.pop()
	delay, gate := a.delay, a.gate
	a.mu.Unlock()
	a.changed.notify()
	defer func() {
		a.mu.Lock()
		a.active[req.ThreadID]--
		a.mu.Unlock()
	}()

	if err := sleep(ctx, delay); err != nil {
		return "", fmt.Errorf("fake: reply: %w", err)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", fmt.Errorf("fake: reply: %w", ctx.Err())
		}
	}
	if failed {
		return "", fmt.Errorf("fake: reply: %w", failure)
	}
	said := req.Text
	if calls {
		var err error
		if said, err = a.callTool(ctx, req, tool); err != nil {
			return "", fmt.Errorf("fake: reply: %w", err)
		}
	}
	if scripted {
		return answer, nil
	}
	return EchoPrefix + said, nil
}

// callTool plays a tool script: the model calls the tool once per round
// with req.RunTool and reads its result. It returns what the last result
// says.
func (a *ChatAssistant) callTool(ctx context.Context, req ports.ChatRequest, sc toolScript) (string, error) {
	if !slices.ContainsFunc(req.Tools, func(t ports.ToolSpec) bool { return t.Name == sc.call.Name }) {
		return "", fmt.Errorf("the scripted tool %q is not offered: %w", sc.call.Name, ports.ErrAssistantFailed)
	}
	limit := req.MaxToolRounds
	if limit <= 0 {
		limit = ports.DefaultMaxToolRounds
	}
	var said string
	for round := range sc.rounds {
		if round == limit {
			return "", fmt.Errorf("still calling tools after %d rounds: %w", limit, ports.ErrAssistantFailed)
		}
		call := sc.call
		a.mu.Lock()
		a.calls++
		call.ID = fmt.Sprintf("call_fake_%d", a.calls)
		a.mu.Unlock()
		r := req.RunTool(ctx, call)
		r.CallID = call.ID
		a.mu.Lock()
		a.results[req.ThreadID] = append(a.results[req.ThreadID], r)
		a.mu.Unlock()
		a.changed.notify()
		if err := ctx.Err(); err != nil {
			return "", err
		}
		said = r.Output
		if r.Error != "" {
			said = "error: " + r.Error
		}
	}
	return said, nil
}

// CallToolNext makes the model of the next Reply call the tool (call's ID
// is replaced by a fresh one) once per round, for rounds rounds, before it
// answers. Scripts queue, one per Reply.
func (a *ChatAssistant) CallToolNext(call ports.ToolCall, rounds int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tools.push(toolScript{call: call, rounds: max(rounds, 1)})
}

// QueueReplies makes the next Reply calls answer with answers, in order.
func (a *ChatAssistant) QueueReplies(answers ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replies.push(answers...)
}

// FailNext makes the next Reply fail with err, or with
// ports.ErrAssistantFailed when err is nil.
func (a *ChatAssistant) FailNext(err error) {
	if err == nil {
		err = ports.ErrAssistantFailed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs.push(err)
}

// FailNewThread makes the next NewThread fail with err.
func (a *ChatAssistant) FailNewThread(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.threadErrs.push(err)
}

// SetDelay makes every later Reply take at least d.
func (a *ChatAssistant) SetDelay(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.delay = d
}

// Hold makes every Reply started from now on wait until the returned
// release is called (or its ctx ends). release is idempotent.
func (a *ChatAssistant) Hold() (release func()) {
	gate := make(chan struct{})
	a.mu.Lock()
	a.gate = gate
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			if a.gate == gate {
				a.gate = nil
			}
			a.mu.Unlock()
			close(gate)
		})
	}
}

// DeleteThread forgets a thread, as if it had been deleted (or had
// expired): Reply on it fails with ports.ErrNotFound from now on.
func (a *ChatAssistant) DeleteThread(threadID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.threads, threadID)
	delete(a.results, threadID)
	a.deleted++
}

// Threads returns the ids of the live threads created so far, sorted.
func (a *ChatAssistant) Threads() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(a.threads))
	for id := range a.threads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Texts returns the texts the thread received, in order.
func (a *ChatAssistant) Texts(threadID string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var texts []string
	for _, r := range a.threads[threadID] {
		texts = append(texts, r.Text)
	}
	return texts
}

// Requests returns the requests the thread received, in order.
func (a *ChatAssistant) Requests(threadID string) []ports.ChatRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.threads[threadID])
}

// ToolResults returns the tool results the model read on the thread, in
// order.
func (a *ChatAssistant) ToolResults(threadID string) []ports.ToolResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.results[threadID])
}

// WaitTexts blocks until the thread received at least n texts and returns
// them; it returns an error when ctx ends first.
func (a *ChatAssistant) WaitTexts(ctx context.Context, threadID string, n int) ([]string, error) {
	var got []string
	err := a.changed.until(ctx, func() bool {
		got = a.Texts(threadID)
		return len(got) >= n
	})
	return got, err
}

// Overlaps counts the replies that started while another reply on the same
// thread was running (the caller should prevent that).
func (a *ChatAssistant) Overlaps() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.overlaps
}
