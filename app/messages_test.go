package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/store/memory"
	"github.com/convgateway/gateway/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking step of these tests: generous, so that a busy
// machine never fails them, and finite, so that a bug fails instead of
// hanging.
const wait = 10 * time.Second

// firstThread is the id the fake assistant gives its first thread.
const firstThread = "conv_fake_1"

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

// jitterStore is a ThreadStore whose LockUser waits a random moment before
// asking for the lock, as a busy scheduler or a remote database might: the
// order in which callers reach the store then says nothing about the order
// in which the messages arrived.
type jitterStore struct{ ports.ThreadStore }

func (j jitterStore) LockUser(ctx context.Context, user string) (func(), error) {
	time.Sleep(rand.N(5 * time.Millisecond))
	return j.ThreadStore.LockUser(ctx, user)
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
	asst   *fake.ChatAssistant
	sender *fake.MessageSender
	logs   *logBuffer
}

// newHarness builds a service over the in-memory store and fresh fakes;
// edit tweaks the deps first. The service is shut down at the end of the
// test.
func newHarness(t *testing.T, edit func(*MessagesDeps)) *harness {
	t.Helper()
	h := &harness{logs: &logBuffer{}}
	d := MessagesDeps{
		Store:     memory.NewThreadStore(),
		Assistant: fake.NewChatAssistant(),
		Sender:    fake.NewMessageSender(),
		Logger:    slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	if edit != nil {
		edit(&d)
	}
	h.store = d.Store
	h.asst, _ = d.Assistant.(*fake.ChatAssistant)
	h.sender, _ = d.Sender.(*fake.MessageSender)
	h.svc = NewMessages(d)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(t, h.svc.Shutdown(ctx))
	})
	return h
}

// later makes every answer miss the inline deadline.
func later(d *MessagesDeps) { d.InlineTimeout = time.Millisecond }

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

// waitSent waits until the sender accepted n messages and returns their
// bodies.
func waitSent(t *testing.T, s *fake.MessageSender, n int) []ports.OutboundMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sent, err := s.WaitSent(ctx, n)
	require.NoError(t, err)
	return sent
}

func bodies(msgs []ports.OutboundMessage) []string {
	var b []string
	for _, m := range msgs {
		b = append(b, m.Body)
	}
	return b
}

func TestHandleInlineReply(t *testing.T) {
	h := newHarness(t, nil)

	r := handle(t, h.svc, msg("SM1", "hello"))
	assert.Equal(t, []string{"echo: hello"}, r.Messages)

	r = handle(t, h.svc, msg("SM2", "again"))
	assert.Equal(t, []string{"echo: again"}, r.Messages)

	require.Equal(t, []string{firstThread}, h.asst.Threads(), "the second message reuses the thread")
	assert.Equal(t, []string{"hello", "again"}, h.asst.Texts(firstThread))
	id, err := h.store.Thread(context.Background(), "whatsapp:+15551234567")
	require.NoError(t, err)
	assert.Equal(t, firstThread, id)
	assert.Empty(t, h.sender.Sent(), "an inline answer is not also sent")
}

func TestHandleSlowAssistantDeliversLater(t *testing.T) {
	h := newHarness(t, later)
	release := h.asst.Hold()

	r := handle(t, h.svc, msg("SM1", "slow question"))
	assert.Empty(t, r.Messages, "the webhook is answered at once, empty")

	release()
	assert.Equal(t, []ports.OutboundMessage{{
		To:   "whatsapp:+15551234567",
		From: "whatsapp:+15550000000",
		Body: "echo: slow question",
	}}, waitSent(t, h.sender, 1))
}

func TestHandleRequestCancelledDeliversLater(t *testing.T) {
	h := newHarness(t, nil)
	release := h.asst.Hold()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan ports.Reply)
	go func() {
		r, err := h.svc.Handle(ctx, msg("SM1", "q"))
		assert.NoError(t, err)
		done <- r
	}()
	waitCtx, stop := context.WithTimeout(context.Background(), wait)
	defer stop()
	_, err := h.asst.WaitTexts(waitCtx, firstThread, 1)
	require.NoError(t, err)
	cancel() // Twilio gave up on the webhook
	assert.Empty(t, (<-done).Messages)

	release()
	assert.Equal(t, []string{"echo: q"}, bodies(waitSent(t, h.sender, 1)))
}

func TestHandleRetriedDelivery(t *testing.T) {
	h := newHarness(t, nil)

	first := msg("SM1", "hi")
	first.IdempotencyKey = "tok-1"
	assert.Equal(t, []string{"echo: hi"}, handle(t, h.svc, first).Messages)

	sameSidNoHeader := first
	sameSidNoHeader.IdempotencyKey = ""
	assert.Empty(t, handle(t, h.svc, sameSidNoHeader).Messages)

	sameToken := msg("SM1-other", "hi")
	sameToken.IdempotencyKey = "tok-1"
	assert.Empty(t, handle(t, h.svc, sameToken).Messages)

	assert.Len(t, h.asst.Texts(firstThread), 1, "one assistant call for all deliveries")
	assert.Empty(t, h.sender.Sent())
	assert.Contains(t, h.logs.String(), "duplicate delivery ignored")
}

func TestHandleConcurrentRetriesAnswerOnce(t *testing.T) {
	h := newHarness(t, nil)

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
	assert.Len(t, h.asst.Texts(firstThread), 1)
}

func TestHandleSequentialMessagesAnsweredInOrder(t *testing.T) {
	// Every answer goes the later path: the messages queue up behind a
	// held assistant, so the order they are answered in is decided by the
	// service alone, not by the order they reach the store's lock.
	h := newHarness(t, func(d *MessagesDeps) {
		later(d)
		d.Store = jitterStore{d.Store}
	})
	release := h.asst.Hold()

	const n = 20
	var texts, want []string
	for i := range n {
		text := fmt.Sprintf("message %d", i)
		require.Empty(t, handle(t, h.svc, msg(fmt.Sprintf("SM%d", i), text)).Messages)
		texts = append(texts, text)
		want = append(want, fake.EchoPrefix+text)
	}
	release()

	assert.Equal(t, want, bodies(waitSent(t, h.sender, n)), "answers sent in arrival order")
	require.Equal(t, []string{firstThread}, h.asst.Threads())
	assert.Equal(t, texts, h.asst.Texts(firstThread), "asked in arrival order")
	assert.Zero(t, h.asst.Overlaps(), "never two replies at once on the thread")
}

func TestHandleConcurrentMessagesOneUser(t *testing.T) {
	h := newHarness(t, nil)
	h.asst.SetDelay(time.Millisecond) // let replies overlap if they could

	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			text := fmt.Sprintf("message %d", i)
			r := handle(t, h.svc, msg(fmt.Sprintf("SM%d", i), text))
			assert.Equal(t, []string{fake.EchoPrefix + text}, r.Messages, "each message gets its own answer")
		})
	}
	wg.Wait()

	require.Equal(t, []string{firstThread}, h.asst.Threads(), "concurrent first messages make one thread")
	assert.Len(t, h.asst.Texts(firstThread), n)
	assert.Zero(t, h.asst.Overlaps(), "never two replies at once on the thread")
}

func TestHandleTwoServicesShareOneStore(t *testing.T) {
	// Two gateway processes over one shared store and assistant: one
	// thread, one exchange at a time, each delivery answered once.
	a := newHarness(t, nil)
	b := newHarness(t, func(d *MessagesDeps) { d.Store, d.Assistant = a.store, a.asst })
	a.asst.SetDelay(time.Millisecond)

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
	assert.Equal(t, n, total, "each delivery answered once")
	require.Equal(t, []string{firstThread}, a.asst.Threads())
	assert.Len(t, a.asst.Texts(firstThread), n)
	assert.Zero(t, a.asst.Overlaps())
}

func TestHandleLongReplySplit(t *testing.T) {
	long := strings.Repeat("Twenty chars here. ", 10) // 190 characters
	want := strings.TrimSpace(long)
	short := func(d *MessagesDeps) { d.MaxLen = 40 }

	t.Run("inline", func(t *testing.T) {
		h := newHarness(t, short)
		h.asst.QueueReplies(long)
		r := handle(t, h.svc, msg("SM1", "tell me a lot"))
		require.Len(t, r.Messages, 5)
		for _, p := range r.Messages {
			assert.LessOrEqual(t, utf8.RuneCountInString(p), 40)
		}
		assert.Equal(t, want, strings.Join(r.Messages, " "))
	})

	t.Run("later", func(t *testing.T) {
		h := newHarness(t, func(d *MessagesDeps) { short(d); later(d) })
		h.asst.QueueReplies(long)
		release := h.asst.Hold()
		require.Empty(t, handle(t, h.svc, msg("SM1", "tell me a lot")).Messages)
		release()
		assert.Equal(t, want, strings.Join(bodies(waitSent(t, h.sender, 5)), " "), "parts sent in order")
	})
}

// TestHandleTooManyPartsForInline: Twilio sends at most 10 <Message>
// replies to one incoming message; an answer in more parts goes out
// through the sender, every part in order, and Handle returns an empty
// Reply without waiting for the inline deadline.
func TestHandleTooManyPartsForInline(t *testing.T) {
	long := strings.Repeat("Twenty chars here. ", 10) // 190 characters: 5 parts of 40
	want := strings.TrimSpace(long)

	h := newHarness(t, func(d *MessagesDeps) { d.MaxLen, d.MaxInlineParts, d.InlineTimeout = 40, 5, time.Hour })
	h.asst.QueueReplies(long)
	assert.Len(t, handle(t, h.svc, msg("SM1", "five parts")).Messages, 5, "as many parts as allowed: inline")

	h = newHarness(t, func(d *MessagesDeps) { d.MaxLen, d.MaxInlineParts, d.InlineTimeout = 40, 4, time.Hour })
	h.asst.QueueReplies(long)
	assert.Empty(t, handle(t, h.svc, msg("SM1", "five parts")).Messages, "one part too many: nothing inline, no wait")
	assert.Equal(t, want, strings.Join(bodies(waitSent(t, h.sender, 5)), " "), "every part sent, in order")
}

func TestHandleUnusualInput(t *testing.T) {
	h := newHarness(t, nil)

	media := msg("SM1", "look at this")
	media.NumMedia = 1
	assert.Equal(t, []string{textMedia}, handle(t, h.svc, media).Messages)
	assert.Equal(t, []string{textEmpty}, handle(t, h.svc, msg("SM2", " \n ")).Messages)
	assert.Empty(t, handle(t, h.svc, media).Messages, "a retried media message is a duplicate too")

	assert.Empty(t, h.asst.Threads(), "no assistant call")
	assert.Empty(t, h.sender.Sent())
}

func TestHandleInvalidInput(t *testing.T) {
	h := newHarness(t, nil)
	for _, m := range []ports.InboundMessage{msg("", "hi"), {MessageSid: "SM1", Body: "hi"}} {
		_, err := h.svc.Handle(context.Background(), m)
		require.ErrorIs(t, err, ports.ErrInvalidInput)
	}
}

func TestHandleAssistantFailure(t *testing.T) {
	internal := "upstream said: internal_server_error at /v1/responses"
	failure := fmt.Errorf("%s: %w", internal, ports.ErrAssistantFailed)

	t.Run("inline", func(t *testing.T) {
		h := newHarness(t, nil)
		h.asst.FailNext(failure)
		r := handle(t, h.svc, msg("SM-fail", "hi"))
		assert.Equal(t, []string{textApology}, r.Messages)
		logs := h.logs.String()
		assert.Regexp(t, `level=ERROR msg="assistant failed" message_sid=SM-fail .*`+internal, logs)
	})

	t.Run("later", func(t *testing.T) {
		h := newHarness(t, later)
		h.asst.FailNext(failure)
		release := h.asst.Hold()
		require.Empty(t, handle(t, h.svc, msg("SM1", "hi")).Messages)
		release()
		assert.Equal(t, []string{textApology}, bodies(waitSent(t, h.sender, 1)))
	})

	t.Run("new thread", func(t *testing.T) {
		h := newHarness(t, nil)
		h.asst.FailNewThread(fmt.Errorf("conversations: create: %w", ports.ErrRejected))
		assert.Equal(t, []string{textApology}, handle(t, h.svc, msg("SM1", "hi")).Messages)
	})

	t.Run("empty answer", func(t *testing.T) {
		h := newHarness(t, nil)
		h.asst.QueueReplies(" ")
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
			h := newHarness(t, func(d *MessagesDeps) {
				down.ThreadStore = d.Store
				d.Store = down
			})
			r := handle(t, h.svc, msg("SM-down", "hi"))
			assert.Equal(t, []string{textUnavailable}, r.Messages)
			assert.Empty(t, h.asst.Threads(), "no assistant call")
			assert.Regexp(t, `level=ERROR msg="message not processed: [^"]+" message_sid=SM-down`, h.logs.String())
		})
	}
}

func TestHandleSendFailureLogged(t *testing.T) {
	h := newHarness(t, later)
	h.sender.RejectNext()
	release := h.asst.Hold()
	require.Empty(t, handle(t, h.svc, msg("SM-lost", "private words")).Messages)
	release()
	require.NoError(t, h.svc.Shutdown(context.Background())) // drains the delivery

	logs := h.logs.String()
	assert.Regexp(t, `level=ERROR msg="answer not delivered: send failed" message_sid=SM-lost .*undelivered_chars=19`, logs) // len("echo: private words")
	assert.NotContains(t, logs, "private words", "the text is not logged")
	assert.Empty(t, h.sender.Sent())
}

func TestShutdownDrainsInFlightReply(t *testing.T) {
	h := newHarness(t, later)
	release := h.asst.Hold()
	require.Empty(t, handle(t, h.svc, msg("SM1", "q")).Messages)

	shut := make(chan error)
	go func() { shut <- h.svc.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool {
		h.svc.mu.Lock()
		defer h.svc.mu.Unlock()
		return h.svc.closing
	}, wait, time.Millisecond)

	assert.Equal(t, []string{textRestarting}, handle(t, h.svc, msg("SM2", "too late")).Messages)

	release()
	require.NoError(t, <-shut)
	assert.Equal(t, []string{"echo: q"}, bodies(h.sender.Sent()), "delivered before Shutdown returned")

	first, err := h.store.FirstSeen(context.Background(), "sid:SM2")
	require.NoError(t, err)
	assert.True(t, first, "a message refused while closing is not recorded, so its retry is processed")
}

func TestShutdownDeadlineLogsUndelivered(t *testing.T) {
	h := newHarness(t, later)
	h.asst.Hold() // never released: the assistant answers only when cancelled
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
	assert.Empty(t, h.sender.Sent())
}

func TestHooks(t *testing.T) {
	var (
		mu       sync.Mutex
		outcomes []Outcome
		replies  []error
	)
	h := newHarness(t, func(d *MessagesDeps) {
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

var (
	_ ports.ThreadStore = downStore{}
	_ ports.ThreadStore = jitterStore{}
)
