package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/store/memory"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking step of these tests: generous, so that a busy
// machine never fails them, and finite, so that a bug fails instead of
// hanging.
const wait = 10 * time.Second

// firstThread is the id the fake assistant gives its first thread.
const firstThread = "conv_fake_1"

// stores is what the service keeps in one database: its ThreadStore,
// DeliveryLedger and UserLocks. The in-memory store and the fake implement
// all of it, and so do the wrappers below.
type stores interface {
	ports.ThreadStore
	ports.DeliveryLedger
	ports.UserLocks
}

// useStore makes the service keep everything in s.
func useStore(d *MessagesDeps, s stores) { d.Threads, d.Ledger, d.Locks = s, s, s }

// storeOf returns the store the service keeps everything in (useStore).
func storeOf(d *MessagesDeps) stores { return d.Threads.(stores) }

// downStore is a store whose chosen methods fail as if the database were
// unreachable: firstSeenIdem fails FirstSeen for idempotency-token keys
// only (after the MessageSid was recorded).
type downStore struct {
	stores
	firstSeen, firstSeenIdem, thread, lock, delivered bool
}

func (d downStore) Delivered(ctx context.Context, key string) error {
	if d.delivered {
		return fmt.Errorf("db: delivered: %w", ports.ErrUnavailable)
	}
	return d.stores.Delivered(ctx, key)
}

func (d downStore) LockUser(ctx context.Context, user string) (func(), error) {
	if d.lock {
		return nil, fmt.Errorf("db: lock user: %w", ports.ErrUnavailable)
	}
	return d.stores.LockUser(ctx, user)
}

func (d downStore) FirstSeen(ctx context.Context, key, owner string) (bool, error) {
	if d.firstSeen || d.firstSeenIdem && strings.HasPrefix(key, idemPrefix) {
		return false, fmt.Errorf("db: first seen: %w", ports.ErrUnavailable)
	}
	return d.stores.FirstSeen(ctx, key, owner)
}

func (d downStore) Thread(ctx context.Context, user string) (string, error) {
	if d.thread {
		return "", fmt.Errorf("db: thread: %w", ports.ErrUnavailable)
	}
	return d.stores.Thread(ctx, user)
}

// jitterStore is a store whose LockUser waits a random moment before
// asking for the lock, as a busy scheduler or a remote database might: the
// order in which callers reach the store then says nothing about the order
// in which the messages arrived.
type jitterStore struct{ stores }

func (j jitterStore) LockUser(ctx context.Context, user string) (func(), error) {
	time.Sleep(rand.N(5 * time.Millisecond))
	return j.stores.LockUser(ctx, user)
}

// sweepStore is a store that counts the calls of Abandoned (when they
// start and once they return) and, while blocking is set, makes them wait
// for their context.
type sweepStore struct {
	stores
	started, calls atomic.Int32
	blocking       atomic.Bool
}

func (s *sweepStore) Abandoned(ctx context.Context, olderThan time.Duration) ([]string, error) {
	s.started.Add(1)
	defer s.calls.Add(1)
	if s.blocking.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.stores.Abandoned(ctx, olderThan)
}

// awaitSweeps waits until n more sweeps than when it was called have
// returned from the store. Sweeps run one after the other, so the logging
// of every sweep before the last has finished by then.
func (s *sweepStore) awaitSweeps(t *testing.T, n int32) {
	t.Helper()
	want := s.calls.Load() + n
	require.Eventually(t, func() bool { return s.calls.Load() >= want }, wait, time.Millisecond, "%d more sweeps", n)
}

type harness struct {
	svc    *MessagesService
	store  stores
	asst   *fake.ChatAssistant
	sender *fake.MessageSender
	logs   *testlog.Buffer
}

// newHarness builds a service over the in-memory store and fresh fakes;
// edit tweaks the deps first. The service is shut down at the end of the
// test.
func newHarness(t *testing.T, edit func(*MessagesDeps)) *harness {
	t.Helper()
	h := &harness{logs: &testlog.Buffer{}}
	d := MessagesDeps{
		Assistant: fake.NewChatAssistant(),
		Sender:    fake.NewMessageSender(),
		Logger:    slog.New(slog.NewTextHandler(h.logs, nil)),
		// Parts back to back, unless a test is about the pause.
		PartInterval: -1,
	}
	useStore(&d, memory.NewThreadStore())
	if edit != nil {
		edit(&d)
	}
	h.store = storeOf(&d)
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

// setLimits changes the limits of the service's sender (a fake, or a
// wrapper of one): each argument that is not zero replaces its limit.
func setLimits(d *MessagesDeps, chars, replyMessages, replyBytes int) {
	s := d.Sender.(interface {
		ports.MessageSender
		SetLimits(ports.MessageLimits)
	})
	l := s.Limits()
	l.MaxChars = cmp.Or(chars, l.MaxChars)
	l.MaxReplyMessages = cmp.Or(replyMessages, l.MaxReplyMessages)
	l.MaxReplyBytes = cmp.Or(replyBytes, l.MaxReplyBytes)
	s.SetLimits(l)
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
		useStore(d, jitterStore{storeOf(d)})
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
	b := newHarness(t, func(d *MessagesDeps) { useStore(d, a.store); d.Assistant = a.asst })
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
	short := func(d *MessagesDeps) { setLimits(d, 40, 0, 0) }

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

// TestHandleTooMuchForInline: Twilio sends at most 10 <Message> replies to
// one incoming message, and refuses a TwiML response over 64 kB; an answer
// over either limit goes out through the sender, every part in order, and
// Handle returns an empty Reply without waiting for the inline deadline.
func TestHandleTooMuchForInline(t *testing.T) {
	long := strings.Repeat("Twenty chars here. ", 10) // 190 bytes: 5 parts of 40, 185 bytes once trimmed and cut
	want := strings.TrimSpace(long)

	for name, limit := range map[string]func(d *MessagesDeps, n int){
		"parts": func(d *MessagesDeps, n int) { setLimits(d, 0, 5+n, 0) },
		"bytes": func(d *MessagesDeps, n int) { setLimits(d, 0, 0, 185+n) },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(d *MessagesDeps) { setLimits(d, 40, 0, 0); d.InlineTimeout = time.Hour; limit(d, 0) })
			h.asst.QueueReplies(long)
			assert.Len(t, handle(t, h.svc, msg("SM1", "five parts")).Messages, 5, "as much as allowed: inline")

			h = newHarness(t, func(d *MessagesDeps) { setLimits(d, 40, 0, 0); d.InlineTimeout = time.Hour; limit(d, -1) })
			h.asst.QueueReplies(long)
			assert.Empty(t, handle(t, h.svc, msg("SM1", "five parts")).Messages, "one too many: nothing inline, no wait")
			assert.Equal(t, want, strings.Join(bodies(waitSent(t, h.sender, 5)), " "), "every part sent, in order")
		})
	}
}

// The limits come from the sender, whose contract makes them positive: a
// sender that breaks it is a programming error, caught at once.
func TestNewMessagesNeedsPositiveLimits(t *testing.T) {
	for _, l := range []ports.MessageLimits{
		{MaxReplyMessages: 10, MaxReplyBytes: 100},
		{MaxChars: 40, MaxReplyBytes: 100},
		{MaxChars: 40, MaxReplyMessages: 10},
	} {
		sender := fake.NewMessageSender()
		sender.SetLimits(l)
		store := memory.NewThreadStore()
		assert.Panics(t, func() {
			NewMessages(MessagesDeps{Threads: store, Ledger: store, Locks: store, Assistant: fake.NewChatAssistant(), Sender: sender})
		}, "%+v", l)
	}
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
				down.stores = storeOf(d)
				useStore(d, down)
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

	first, err := h.store.FirstSeen(context.Background(), "sid:SM2", "gw-other")
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

// unanswered drains h's service (every answer delivered and marked) and
// returns the keys its store still holds as never answered.
func unanswered(t *testing.T, h *harness) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, h.svc.Shutdown(ctx))
	keys, err := h.store.Abandoned(ctx, 0)
	require.NoError(t, err)
	return keys
}

// Every way a delivery is answered marks it, under its MessageSid and its
// idempotency token: none is ever reported as never delivered.
func TestAnsweredDeliveriesAreMarked(t *testing.T) {
	long := strings.Repeat("Twenty chars here. ", 10) // 5 parts of 40
	withToken := func(m ports.InboundMessage, token string) ports.InboundMessage {
		m.IdempotencyKey = token
		return m
	}
	media := msg("SM-media", "look")
	media.NumMedia = 1
	for name, c := range map[string]struct {
		edit func(*MessagesDeps)
		run  func(t *testing.T, h *harness)
	}{
		"inline": {nil, func(t *testing.T, h *harness) {
			assert.Equal(t, []string{"echo: hi"}, handle(t, h.svc, withToken(msg("SM-inline", "hi"), "tok-1")).Messages)
		}},
		"later": {later, func(t *testing.T, h *harness) {
			release := h.asst.Hold()
			require.Empty(t, handle(t, h.svc, withToken(msg("SM-later", "hi"), "tok-1")).Messages)
			release()
			waitSent(t, h.sender, 1)
		}},
		"too many parts for inline": {func(d *MessagesDeps) { setLimits(d, 40, 4, 0) }, func(t *testing.T, h *harness) {
			h.asst.QueueReplies(long)
			require.Empty(t, handle(t, h.svc, msg("SM-long", "tell me a lot")).Messages)
			waitSent(t, h.sender, 5)
		}},
		"media notice": {nil, func(t *testing.T, h *harness) {
			assert.Equal(t, []string{textMedia}, handle(t, h.svc, withToken(media, "tok-1")).Messages)
		}},
		"empty body notice": {nil, func(t *testing.T, h *harness) {
			assert.Equal(t, []string{textEmpty}, handle(t, h.svc, msg("SM-empty", " ")).Messages)
		}},
		"duplicate by token under a new MessageSid": {nil, func(t *testing.T, h *harness) {
			handle(t, h.svc, withToken(msg("SM-first", "hi"), "tok-1"))
			assert.Empty(t, handle(t, h.svc, withToken(msg("SM-retry", "hi"), "tok-1")).Messages)
		}},
		"assistant failure apology": {nil, func(t *testing.T, h *harness) {
			h.asst.FailNext(ports.ErrAssistantFailed)
			assert.Equal(t, []string{textApology}, handle(t, h.svc, msg("SM-fail", "hi")).Messages)
		}},
		"send failed (logged already)": {later, func(t *testing.T, h *harness) {
			h.sender.RejectNext()
			release := h.asst.Hold()
			require.Empty(t, handle(t, h.svc, msg("SM-reject", "hi")).Messages)
			release()
		}},
		"lock failed: polite text": {func(d *MessagesDeps) { useStore(d, downStore{stores: storeOf(d), lock: true}) }, func(t *testing.T, h *harness) {
			assert.Equal(t, []string{textUnavailable}, handle(t, h.svc, msg("SM-lock", "hi")).Messages)
		}},
		"token not recorded: polite text": {func(d *MessagesDeps) { useStore(d, downStore{stores: storeOf(d), firstSeenIdem: true}) }, func(t *testing.T, h *harness) {
			assert.Equal(t, []string{textUnavailable}, handle(t, h.svc, withToken(msg("SM-idem-down", "hi"), "tok-1")).Messages)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, c.edit)
			c.run(t, h)
			assert.Empty(t, unanswered(t, h), "deliveries left unmarked")
		})
	}
}

// cancelledStore is a store whose FirstSeen of idempotency-token keys
// fails with its context's error when that is done, as a database would.
type cancelledStore struct{ stores }

func (c cancelledStore) FirstSeen(ctx context.Context, key, owner string) (bool, error) {
	if strings.HasPrefix(key, idemPrefix) && ctx.Err() != nil {
		return false, ctx.Err()
	}
	return c.stores.FirstSeen(ctx, key, owner)
}

// An answer dropped at the Shutdown deadline, while the assistant prepares
// it or while it is being sent, is logged by Shutdown and left unmarked, so
// the next start reports it too; a message whose request ended while it
// was being recorded is answered by nobody (its retry is a duplicate) and
// is left unmarked as well.
func TestUnansweredDeliveriesStayUnmarked(t *testing.T) {
	replied := make(chan struct{}, 1)
	h := newHarness(t, func(d *MessagesDeps) {
		later(d)
		useStore(d, cancelledStore{storeOf(d)})
		d.Hooks.AssistantReplied = func(_ time.Duration, err error) {
			if err == nil {
				replied <- struct{}{}
			}
		}
	})
	h.sender.SetDelay(time.Hour) // until the send's context ends
	release := h.asst.Hold()
	require.Empty(t, handle(t, h.svc, msg("SM-sending", "q0")).Messages)
	release() // the answer goes to the sender, which keeps it
	select {
	case <-replied:
	case <-time.After(wait):
		t.Fatal("the assistant did not answer")
	}

	h.asst.Hold() // never released
	other := msg("SM-dropped", "q1")
	other.From = "whatsapp:+15559999999" // not queued behind SM-sending
	require.Empty(t, handle(t, h.svc, other).Messages)

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	m := msg("SM-gone", "q2")
	m.IdempotencyKey = "tok-gone"
	_, err := h.svc.Handle(gone, m)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, h.svc.Shutdown(ctx), context.Canceled)
	keys, err := h.store.Abandoned(context.Background(), 0)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"sid:SM-sending", "sid:SM-dropped", "sid:SM-gone"}, keys)
	assert.Regexp(t, `msg="answer not delivered: shutting down" message_sid=SM-sending user=\S+ undelivered_chars=8`, h.logs.String(),
		"SM-sending was dropped while it was being sent")
}

// A failed mark is logged: the delivery may be reported later.
func TestMarkFailureLogged(t *testing.T) {
	h := newHarness(t, func(d *MessagesDeps) { useStore(d, downStore{stores: storeOf(d), delivered: true}) })
	assert.Equal(t, []string{"echo: hi"}, handle(t, h.svc, msg("SM-unmarked", "hi")).Messages)
	assert.Equal(t, []string{"sid:SM-unmarked"}, unanswered(t, h))
	assert.Regexp(t, `level=WARN msg="answer not recorded as delivered: [^"]+" message_sid=SM-unmarked .*err=`, h.logs.String())
}

// neverDelivered matches the sweep's report of sid.
func neverDelivered(sid string) *regexp.Regexp {
	return regexp.MustCompile(`level=ERROR msg="answer never delivered: the gateway that took this message stopped before sending it" message_sid=` +
		regexp.QuoteMeta(sid) + `\n`)
}

// sweeping makes the service look for abandoned deliveries often and count
// every delivery older than a millisecond.
func sweeping(store *sweepStore) func(*MessagesDeps) {
	return func(d *MessagesDeps) {
		store.stores = storeOf(d)
		useStore(d, store)
		d.AbandonedAfter, d.AbandonedEvery = time.Millisecond, 2*time.Millisecond
	}
}

// A delivery that another gateway took and never answered (it crashed) is
// reported by the sweep, by MessageSid, once; its idempotency token is not
// reported on its own; a delivery that was answered is never reported.
func TestSweepReportsAbandonedDeliveryOnce(t *testing.T) {
	store := memory.NewThreadStore()
	ctx := context.Background()
	for _, k := range []string{"sid:SM-crashed", "idem:tok-crashed", "sid:SM-answered"} {
		first, err := store.FirstSeen(ctx, k, "gw-crashed")
		require.NoError(t, err)
		require.True(t, first)
	}
	require.NoError(t, store.Delivered(ctx, "sid:SM-answered"))

	sweeps := &sweepStore{}
	h := newHarness(t, func(d *MessagesDeps) { useStore(d, store); sweeping(sweeps)(d) })
	require.Eventually(t, func() bool { return neverDelivered("SM-crashed").MatchString(h.logs.String()) },
		wait, time.Millisecond, "the abandoned delivery is reported")
	assert.Equal(t, []string{"echo: hi"}, handle(t, h.svc, msg("SM-new", "hi")).Messages)
	sweeps.awaitSweeps(t, 3)

	logs := h.logs.String()
	assert.Len(t, neverDelivered("SM-crashed").FindAllString(logs, -1), 1, "reported once:\n%s", logs)
	assert.Equal(t, 1, strings.Count(logs, "answer never delivered"), "nothing else is reported:\n%s", logs)
	assert.NotContains(t, logs, "tok-crashed")
}

// unrenewed is a store whose leases are never taken or renewed: the
// lease of an instance on it has lapsed (the store was unreachable for
// longer than the ttl, say).
type unrenewed struct{ stores }

func (unrenewed) Renew(context.Context, string, time.Duration) error { return nil }

// lapsedLease gives the service an instance whose lease has lapsed.
func lapsedLease(t *testing.T) func(*MessagesDeps) {
	return func(d *MessagesDeps) {
		inst := NewInstance(InstanceDeps{Leases: unrenewed{storeOf(d)}})
		t.Cleanup(func() { _ = inst.Shutdown(context.Background()) })
		d.Instance = inst
	}
}

// The sweep does not report a message this process is still working on,
// however long it takes, even when its lease lapsed (so that the store
// reports the delivery as left behind); it warns instead, and the answer
// is delivered.
func TestSweepSkipsAnswerInProgress(t *testing.T) {
	sweeps := &sweepStore{}
	h := newHarness(t, func(d *MessagesDeps) { later(d); sweeping(sweeps)(d); lapsedLease(t)(d) })
	release := h.asst.Hold()
	require.Empty(t, handle(t, h.svc, msg("SM-slow", "hi")).Messages)
	require.Eventually(t, func() bool {
		return strings.Contains(h.logs.String(), `level=WARN msg="answer still in progress long after the message was taken`)
	}, wait, time.Millisecond)
	release()
	waitSent(t, h.sender, 1)
	sweeps.awaitSweeps(t, 2)
	assert.NotContains(t, h.logs.String(), "answer never delivered")
}

// A store failure in the sweep is a warning, and the next sweep tries
// again: the abandoned delivery is reported once the store is back.
func TestSweepRetriesAfterStoreFailure(t *testing.T) {
	store := fake.NewThreadStore()
	first, err := store.FirstSeen(context.Background(), "sid:SM-crashed", "gw-crashed")
	require.NoError(t, err)
	require.True(t, first)
	store.Down(ports.ErrUnavailable)

	sweeps := &sweepStore{}
	h := newHarness(t, func(d *MessagesDeps) { useStore(d, store); sweeping(sweeps)(d) })
	sweeps.awaitSweeps(t, 2)
	assert.Regexp(t, `level=WARN msg="could not look for answers never delivered: trying again later" retry_in=2ms err=`, h.logs.String())
	assert.NotContains(t, h.logs.String(), "answer never delivered")

	store.Down(nil)
	require.Eventually(t, func() bool { return neverDelivered("SM-crashed").MatchString(h.logs.String()) }, wait, time.Millisecond)
}

// Shutdown stops the sweeper, even in the middle of a sweep that waits for
// the store: no goroutine of the service is left.
func TestShutdownStopsSweeper(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	sweeps := &sweepStore{}
	sweeps.blocking.Store(true)
	d := MessagesDeps{Assistant: fake.NewChatAssistant(), Sender: fake.NewMessageSender()}
	useStore(&d, memory.NewThreadStore())
	sweeping(sweeps)(&d)
	svc := NewMessages(d)
	require.Eventually(t, func() bool { return sweeps.started.Load() > 0 }, wait, time.Millisecond,
		"a sweep is waiting for the store")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, svc.Shutdown(ctx), context.Canceled, "the blocked sweep is cancelled")
	goleak.VerifyNone(t, leaks)
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
	_ stores = downStore{}
	_ stores = jitterStore{}
	_ stores = (*sweepStore)(nil)
	_ stores = cancelledStore{}
	_ stores = unrenewed{}
)
