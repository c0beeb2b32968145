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
// EchoPrefix + the text; tests can queue answers and errors, add a delay or
// hold replies until released. It records the texts each thread received
// and counts overlapping replies on one thread. Create one with
// NewChatAssistant.
type ChatAssistant struct {
	mu         sync.Mutex
	threads    map[string][]string
	replies    queue[string]
	errs       queue[error]
	threadErrs queue[error]
	delay      time.Duration
	gate       chan struct{} // non-nil while replies are held
	active     map[string]int
	overlaps   int
	deleted    int // threads deleted, so that new ids stay new
	changed    changes
}

// NewChatAssistant returns an assistant that echoes at once.
func NewChatAssistant() *ChatAssistant {
	return &ChatAssistant{threads: make(map[string][]string), active: make(map[string]int)}
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

// Reply records text on the thread and answers: the next queued error or
// answer, else EchoPrefix + text. It waits for the delay set with SetDelay
// and for Release after Hold; cancelling ctx abandons the wait with an
// error wrapping ctx.Err(). Errors: ports.ErrNotFound for an unknown thread.
func (a *ChatAssistant) Reply(ctx context.Context, threadID, text string) (string, error) {
	if err := errCheck(ctx, "reply"); err != nil {
		return "", err
	}
	a.mu.Lock()
	texts, ok := a.threads[threadID]
	if !ok {
		a.mu.Unlock()
		return "", fmt.Errorf("fake: reply: thread %q: %w", threadID, ports.ErrNotFound)
	}
	a.threads[threadID] = append(texts, text)
	a.active[threadID]++
	if a.active[threadID] > 1 {
		a.overlaps++
	}
	failure, failed := a.errs.pop()
	answer, scripted := a.replies.pop()
	delay, gate := a.delay, a.gate
	a.mu.Unlock()
	a.changed.notify()
	defer func() {
		a.mu.Lock()
		a.active[threadID]--
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
	switch {
	case failed:
		return "", fmt.Errorf("fake: reply: %w", failure)
	case scripted:
		return answer, nil
	}
	return EchoPrefix + text, nil
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
	return slices.Clone(a.threads[threadID])
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
