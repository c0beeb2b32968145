package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/store/memory"
	"github.com/convgateway/gateway/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking step of these tests: generous, so that a busy
// machine never fails them, and finite, so that a bug fails instead of
// hanging.
const wait = 10 * time.Second

// assistant is a ChatAssistant double. It echoes by default, records what
// it was asked, and measures how many Reply calls ran at once per thread.
type assistant struct {
	// reply, when set, replaces the echo. It runs inside the concurrency
	// accounting.
	reply func(ctx context.Context, thread, text string) (string, error)

	mu         sync.Mutex
	threads    int
	texts      []string
	running    map[string]int
	maxRunning int
}

func (a *assistant) NewThread(context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.threads++
	return fmt.Sprintf("thread_%d", a.threads), nil
}

func (a *assistant) Reply(ctx context.Context, thread, text string) (string, error) {
	a.mu.Lock()
	if a.running == nil {
		a.running = make(map[string]int)
	}
	a.running[thread]++
	a.maxRunning = max(a.maxRunning, a.running[thread])
	a.texts = append(a.texts, text)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running[thread]--
		a.mu.Unlock()
	}()
	if a.reply != nil {
		return a.reply(ctx, thread, text)
	}
	return "echo: " + text, nil
}

func (a *assistant) stats() (threads int, texts []string, maxRunning int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.threads, append([]string(nil), a.texts...), a.maxRunning
}

// sender is a MessageSender double that records what it sent.
type sender struct {
	err error // returned by every Send when set

	mu   sync.Mutex
	sent []ports.OutboundMessage
}

func (s *sender) Send(ctx context.Context, msg ports.OutboundMessage) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.err != nil {
		return "", s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, msg)
	return fmt.Sprintf("SM%d", len(s.sent)), nil
}

func (s *sender) messages() []ports.OutboundMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.OutboundMessage(nil), s.sent...)
}

func (s *sender) bodies() []string {
	var b []string
	for _, m := range s.messages() {
		b = append(b, m.Body)
	}
	return b
}

// downStore is a ThreadStore whose chosen methods fail as if the database
// were unreachable.
type downStore struct {
	ports.ThreadStore
	firstSeen, thread, lock bool
}

func (d downStore) LockUser(ctx context.Context, user string) (func(), error) {
	if d.lock {
		return nil, fmt.Errorf("db: lock user: %w", ports.ErrUnavailable)
	}
	return d.ThreadStore.LockUser(ctx, user)
}

func (d downStore) FirstSeen(ctx context.Context, key string) (bool, error) {
	if d.firstSeen {
		return false, fmt.Errorf("db: first seen: %w", ports.ErrUnavailable)
	}
	return d.ThreadStore.FirstSeen(ctx, key)
}

func (d downStore) Thread(ctx context.Context, user string) (string, error) {
	if d.thread {
		return "", fmt.Errorf("db: thread: %w", ports.ErrUnavailable)
	}
	return d.ThreadStore.Thread(ctx, user)
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	svc    *MessagesService
	store  ports.ThreadStore
	asst   *assistant
	sender *sender
	logs   *logBuffer
}

// newHarness builds a service over the in-memory store and the doubles;
// edit tweaks the deps first. The service is shut down at the end of the
// test.
func newHarness(t *testing.T, asst *assistant, edit func(*MessagesDeps)) *harness {
	t.Helper()
	h := &harness{store: memory.NewThreadStore(), asst: asst, sender: &sender{}, logs: &logBuffer{}}
	d := MessagesDeps{
		Store:     h.store,
		Assistant: asst,
		Sender:    h.sender,
		Logger:    slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	if edit != nil {
		edit(&d)
	}
	h.store = d.Store
	h.svc = NewMessages(d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, h.svc.Shutdown(ctx))
	})
	return h
}

func msg(sid, body string) ports.InboundMessage {
	return ports.InboundMessage{
		MessageSid: sid,
		From:       "whatsapp:+15551234567",
		To:         "whatsapp:+15550000000",
		Body:       body,
	}
}

func handle(t *testing.T, svc *MessagesService, m ports.InboundMessage) ports.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := svc.Handle(ctx, m)
	require.NoError(t, err)
	return r
}

// gate blocks replies until it is opened.
type gate chan struct{}

func (g gate) reply(ctx context.Context, _, text string) (string, error) {
	select {
	case <-g:
		return "echo: " + text, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func TestHandleInlineReply(t *testing.T) {
	h := newHarness(t, &assistant{}, nil)

	r := handle(t, h.svc, msg("SM1", "hello"))
	assert.Equal(t, []string{"echo: hello"}, r.Messages)

	r = handle(t, h.svc, msg("SM2", "again"))
	assert.Equal(t, []string{"echo: again"}, r.Messages)

	threads, texts, _ := h.asst.stats()
	assert.Equal(t, 1, threads, "the second message reuses the thread")
	assert.Equal(t, []string{"hello", "again"}, texts)
	id, err := h.store.Thread(context.Background(), "whatsapp:+15551234567")
	require.NoError(t, err)
	assert.Equal(t, "thread_1", id)
	assert.Empty(t, h.sender.messages(), "an inline answer is not also sent")
}

func TestHandleSlowAssistantDeliversLater(t *testing.T) {
	g := make(gate)
	h := newHarness(t, &assistant{reply: g.reply}, func(d *MessagesDeps) { d.InlineTimeout = time.Millisecond })

	r := handle(t, h.svc, msg("SM1", "slow question"))
	assert.Empty(t, r.Messages, "the webhook is answered at once, empty")

	close(g)
	require.Eventually(t, func() bool { return len(h.sender.messages()) == 1 }, wait, time.Millisecond)
	assert.Equal(t, ports.OutboundMessage{
		To:   "whatsapp:+15551234567",
		From: "whatsapp:+15550000000",
		Body: "echo: slow question",
	}, h.sender.messages()[0])
}

func TestHandleRequestCancelledDeliversLater(t *testing.T) {
	g := make(gate)
	h := newHarness(t, &assistant{reply: g.reply}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan ports.Reply)
	go func() {
		r, err := h.svc.Handle(ctx, msg("SM1", "q"))
		assert.NoError(t, err)
		done <- r
	}()
	require.Eventually(t, func() bool { _, texts, _ := h.asst.stats(); return len(texts) == 1 }, wait, time.Millisecond)
	cancel()
	assert.Empty(t, (<-done).Messages)

	close(g)
	require.Eventually(t, func() bool { return len(h.sender.messages()) == 1 }, wait, time.Millisecond)
	assert.Equal(t, "echo: q", h.sender.messages()[0].Body)
}

func TestHandleRetriedDelivery(t *testing.T) {
	h := newHarness(t, &assistant{}, nil)

	first := msg("SM1", "hi")
	first.IdempotencyKey = "tok-1"
	assert.Equal(t, []string{"echo: hi"}, handle(t, h.svc, first).Messages)

	sameSidNoHeader := first
	sameSidNoHeader.IdempotencyKey = ""
	assert.Empty(t, handle(t, h.svc, sameSidNoHeader).Messages)

	sameToken := msg("SM1-other", "hi")
	sameToken.IdempotencyKey = "tok-1"
	assert.Empty(t, handle(t, h.svc, sameToken).Messages)

	_, texts, _ := h.asst.stats()
	assert.Len(t, texts, 1, "one assistant call for all deliveries")
	assert.Empty(t, h.sender.messages())
	assert.Contains(t, h.logs.String(), "duplicate delivery ignored")
}

func TestHandleConcurrentRetriesAnswerOnce(t *testing.T) {
	h := newHarness(t, &assistant{}, nil)

	const n = 10
	replies := make(chan ports.Reply, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { replies <- handle(t, h.svc, msg("SM1", "hi")) })
	}
	wg.Wait()
	close(replies)
	answered := 0
	for r := range replies {
		if len(r.Messages) > 0 {
			answered++
			assert.Equal(t, []string{"echo: hi"}, r.Messages)
		}
	}
	assert.Equal(t, 1, answered)
	_, texts, _ := h.asst.stats()
	assert.Len(t, texts, 1)
}

func TestHandleSequentialMessagesAnsweredInOrder(t *testing.T) {
	// Every answer goes the later path: the messages queue up behind a
	// closed gate, so the order they are answered in is decided by the
	// service alone.
	g := make(gate)
	h := newHarness(t, &assistant{reply: g.reply}, func(d *MessagesDeps) { d.InlineTimeout = time.Millisecond })

	const n = 20
	var want []string
	for i := range n {
		text := fmt.Sprintf("message %d", i)
		require.Empty(t, handle(t, h.svc, msg(fmt.Sprintf("SM%d", i), text)).Messages)
		want = append(want, "echo: "+text)
	}
	close(g)
	require.Eventually(t, func() bool { return len(h.sender.messages()) == n }, wait, time.Millisecond)

	assert.Equal(t, want, h.sender.bodies(), "answers sent in arrival order")
	threads, texts, maxRunning := h.asst.stats()
	assert.Equal(t, 1, threads)
	assert.Equal(t, 1, maxRunning, "never two replies at once on the thread")
	for i, text := range texts {
		assert.Equal(t, fmt.Sprintf("message %d", i), text)
	}
}

func TestHandleConcurrentMessagesOneUser(t *testing.T) {
	h := newHarness(t, &assistant{}, nil)

	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			text := fmt.Sprintf("message %d", i)
			r := handle(t, h.svc, msg(fmt.Sprintf("SM%d", i), text))
			assert.Equal(t, []string{"echo: " + text}, r.Messages, "each message gets its own answer")
		})
	}
	wg.Wait()

	threads, texts, maxRunning := h.asst.stats()
	assert.Equal(t, 1, threads, "concurrent first messages make one thread")
	assert.Len(t, texts, n)
	assert.Equal(t, 1, maxRunning, "never two replies at once on the thread")
}

func TestHandleTwoServicesShareOneStore(t *testing.T) {
	// Two gateway processes over one shared store: one thread, one exchange
	// at a time, each delivery answered once.
	asst := &assistant{}
	a := newHarness(t, asst, nil)
	b := newHarness(t, asst, func(d *MessagesDeps) { d.Store = a.store })

	const n = 20
	answered := make(chan int, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		for _, svc := range []*MessagesService{a.svc, b.svc} {
			wg.Go(func() { answered <- len(handle(t, svc, msg(fmt.Sprintf("SM%d", i), "hi")).Messages) })
		}
	}
	wg.Wait()
	close(answered)
	total := 0
	for k := range answered {
		total += k
	}
	threads, texts, maxRunning := asst.stats()
	assert.Equal(t, n, total, "each delivery answered once")
	assert.Len(t, texts, n)
	assert.Equal(t, 1, threads)
	assert.Equal(t, 1, maxRunning)
}

func TestHandleLongReplySplit(t *testing.T) {
	long := strings.Repeat("Twenty chars here. ", 10) // 190 characters
	asst := &assistant{reply: func(context.Context, string, string) (string, error) { return long, nil }}

	t.Run("inline", func(t *testing.T) {
		h := newHarness(t, asst, func(d *MessagesDeps) { d.MaxLen = 40 })
		r := handle(t, h.svc, msg("SM1", "tell me a lot"))
		require.Len(t, r.Messages, 5)
		for _, p := range r.Messages {
			assert.LessOrEqual(t, len([]rune(p)), 40)
		}
		assert.Equal(t, strings.TrimSpace(long), strings.Join(r.Messages, " "))
	})

	t.Run("later", func(t *testing.T) {
		g := make(gate)
		slow := &assistant{reply: func(ctx context.Context, th, text string) (string, error) {
			if _, err := g.reply(ctx, th, text); err != nil {
				return "", err
			}
			return long, nil
		}}
		h := newHarness(t, slow, func(d *MessagesDeps) { d.MaxLen = 40; d.InlineTimeout = time.Millisecond })
		require.Empty(t, handle(t, h.svc, msg("SM1", "tell me a lot")).Messages)
		close(g)
		require.Eventually(t, func() bool { return len(h.sender.messages()) == 5 }, wait, time.Millisecond)
		assert.Equal(t, strings.TrimSpace(long), strings.Join(h.sender.bodies(), " "), "parts sent in order")
	})
}

func TestHandleUnusualInput(t *testing.T) {
	h := newHarness(t, &assistant{}, nil)

	media := msg("SM1", "look at this")
	media.NumMedia = 1
	assert.Equal(t, []string{textMedia}, handle(t, h.svc, media).Messages)
	assert.Equal(t, []string{textEmpty}, handle(t, h.svc, msg("SM2", " \n ")).Messages)
	assert.Empty(t, handle(t, h.svc, media).Messages, "a retried media message is a duplicate too")

	_, texts, _ := h.asst.stats()
	assert.Empty(t, texts, "no assistant call")
	assert.Empty(t, h.sender.messages())
}

func TestHandleInvalidInput(t *testing.T) {
	h := newHarness(t, &assistant{}, nil)
	for _, m := range []ports.InboundMessage{msg("", "hi"), {MessageSid: "SM1", Body: "hi"}} {
		_, err := h.svc.Handle(context.Background(), m)
		require.ErrorIs(t, err, ports.ErrInvalidInput)
	}
}

func TestHandleAssistantFailure(t *testing.T) {
	internal := "upstream said: internal_server_error at /v1/responses"
	fail := func(context.Context, string, string) (string, error) {
		return "", fmt.Errorf("responses: create: %s: %w", internal, ports.ErrAssistantFailed)
	}

	t.Run("inline", func(t *testing.T) {
		h := newHarness(t, &assistant{reply: fail}, nil)
		r := handle(t, h.svc, msg("SM-fail", "hi"))
		assert.Equal(t, []string{textApology}, r.Messages)
		logs := h.logs.String()
		assert.Contains(t, logs, "message_sid=SM-fail")
		assert.Contains(t, logs, internal, "the error is logged")
	})

	t.Run("later", func(t *testing.T) {
		g := make(gate)
		slowFail := func(ctx context.Context, th, text string) (string, error) {
			if _, err := g.reply(ctx, th, text); err != nil {
				return "", err
			}
			return fail(ctx, th, text)
		}
		h := newHarness(t, &assistant{reply: slowFail}, func(d *MessagesDeps) { d.InlineTimeout = time.Millisecond })
		require.Empty(t, handle(t, h.svc, msg("SM1", "hi")).Messages)
		close(g)
		require.Eventually(t, func() bool { return len(h.sender.messages()) == 1 }, wait, time.Millisecond)
		assert.Equal(t, []string{textApology}, h.sender.bodies())
	})

	t.Run("empty answer", func(t *testing.T) {
		empty := func(context.Context, string, string) (string, error) { return " ", nil }
		h := newHarness(t, &assistant{reply: empty}, nil)
		assert.Equal(t, []string{textApology}, handle(t, h.svc, msg("SM1", "hi")).Messages)
	})
}

func TestHandleStoreUnavailable(t *testing.T) {
	for name, down := range map[string]downStore{
		"idempotency": {firstSeen: true},
		"thread":      {thread: true},
		"lock":        {lock: true},
	} {
		t.Run(name, func(t *testing.T) {
			asst := &assistant{}
			h := newHarness(t, asst, func(d *MessagesDeps) {
				down.ThreadStore = d.Store
				d.Store = down
			})
			r := handle(t, h.svc, msg("SM-down", "hi"))
			assert.Equal(t, []string{textUnavailable}, r.Messages)
			_, texts, _ := asst.stats()
			assert.Empty(t, texts)
			assert.Contains(t, h.logs.String(), "level=ERROR")
			assert.Contains(t, h.logs.String(), "message_sid=SM-down")
		})
	}
}

func TestHandleSendFailureLogged(t *testing.T) {
	g := make(gate)
	h := newHarness(t, &assistant{reply: g.reply}, func(d *MessagesDeps) {
		d.InlineTimeout = time.Millisecond
		d.Sender = &sender{err: fmt.Errorf("messaging: send: %w", ports.ErrRejected)}
	})
	require.Empty(t, handle(t, h.svc, msg("SM-lost", "private words")).Messages)
	close(g)
	require.Eventually(t, func() bool { return strings.Contains(h.logs.String(), "send failed") }, wait, time.Millisecond)
	logs := h.logs.String()
	assert.Contains(t, logs, "message_sid=SM-lost")
	assert.Contains(t, logs, "undelivered_chars=19") // len("echo: private words")
	assert.NotContains(t, logs, "private words", "the text is not logged")
}

func TestShutdownDrainsInFlightReply(t *testing.T) {
	g := make(gate)
	h := newHarness(t, &assistant{reply: g.reply}, func(d *MessagesDeps) { d.InlineTimeout = time.Millisecond })
	require.Empty(t, handle(t, h.svc, msg("SM1", "q")).Messages)

	shut := make(chan error)
	go func() { shut <- h.svc.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool {
		h.svc.mu.Lock()
		defer h.svc.mu.Unlock()
		return h.svc.closing
	}, wait, time.Millisecond)

	late := msg("SM2", "too late")
	assert.Equal(t, []string{textRestarting}, handle(t, h.svc, late).Messages)

	close(g)
	require.NoError(t, <-shut)
	assert.Equal(t, []string{"echo: q"}, h.sender.bodies(), "delivered before Shutdown returned")

	first, err := h.store.FirstSeen(context.Background(), "sid:SM2")
	require.NoError(t, err)
	assert.True(t, first, "a message refused while closing is not recorded, so its retry is processed")
}

func TestShutdownDeadlineLogsUndelivered(t *testing.T) {
	g := make(gate) // never opened: the assistant answers only when cancelled
	h := newHarness(t, &assistant{reply: g.reply}, func(d *MessagesDeps) { d.InlineTimeout = time.Millisecond })
	require.Empty(t, handle(t, h.svc, msg("SM-a", "q1")).Messages)
	require.Empty(t, handle(t, h.svc, msg("SM-b", "q2")).Messages) // queued behind SM-a

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.svc.Shutdown(ctx)
	require.ErrorIs(t, err, context.Canceled)

	logs := h.logs.String()
	for _, sid := range []string{"SM-a", "SM-b"} {
		assert.Regexp(t, `msg="answer not delivered: shutting down" message_sid=`+sid, logs)
	}
	assert.Empty(t, h.sender.messages())
}

func TestHooks(t *testing.T) {
	var (
		mu       sync.Mutex
		outcomes []Outcome
		replies  []error
	)
	h := newHarness(t, &assistant{}, func(d *MessagesDeps) {
		d.Hooks = MessagesHooks{
			Handled: func(o Outcome, _ time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				outcomes = append(outcomes, o)
			},
			AssistantReplied: func(_ time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				replies = append(replies, err)
			},
		}
	})
	handle(t, h.svc, msg("SM1", "hi"))
	handle(t, h.svc, msg("SM1", "hi"))
	handle(t, h.svc, msg("SM2", ""))
	_, _ = h.svc.Handle(context.Background(), msg("", "x"))

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []Outcome{OutcomeInline, OutcomeDuplicate, OutcomeUnsupported, OutcomeInvalid}, outcomes)
	assert.Equal(t, []error{nil}, replies)
}

func TestMaskUser(t *testing.T) {
	for in, want := range map[string]string{
		"whatsapp:+15551234567": "whatsapp:…4567",
		"+15551234567":          "…4567",
		"123":                   "…",
		"":                      "…",
	} {
		assert.Equal(t, want, maskUser(in), in)
	}
}

// Compile-time check that the doubles satisfy the ports they stand for.
var (
	_ ports.ChatAssistant = (*assistant)(nil)
	_ ports.MessageSender = (*sender)(nil)
	_ ports.ThreadStore   = downStore{}
)
