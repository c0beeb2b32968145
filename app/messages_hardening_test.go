package app

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
)

// withLease gives the service an instance whose lease lasts ttl, shut
// down after the service.
func withLease(t *testing.T, ttl time.Duration) func(*MessagesDeps) {
	return func(d *MessagesDeps) {
		inst := NewInstance(InstanceDeps{Leases: d.Ledger, TTL: ttl})
		t.Cleanup(func() { _ = inst.Shutdown(context.Background()) })
		d.Instance = inst
	}
}

// sharing makes the service use h's store and assistant, as a second
// gateway process on the same database does.
func sharing(h *harness) func(*MessagesDeps) {
	return func(d *MessagesDeps) { useStore(d, h.store); d.Assistant = h.asst }
}

// takenBy records the delivery of m as taken by the instance owner, as a
// gateway that then stopped did.
func takenBy(t *testing.T, store ports.DeliveryLedger, m ports.InboundMessage, owner string) {
	t.Helper()
	for _, key := range allKeys(m) {
		first, err := store.FirstSeen(context.Background(), key, owner)
		require.NoError(t, err)
		require.True(t, first)
	}
}

// A repeat of a delivery whose gateway stopped before answering it is
// taken over and answered, inline, once; the delivery is then marked
// under both its keys (nothing is reported).
func TestHandleRepeatOfStoppedGatewayAnswered(t *testing.T) {
	h := newHarness(t, nil)
	m := msg("SM-orphan", "are you there?")
	m.IdempotencyKey = "tok-orphan"
	takenBy(t, h.store, m, "gw-crashed") // it never held a lease: it stopped

	assert.Equal(t, []string{"echo: are you there?"}, handle(t, h.svc, m).Messages)
	assert.Empty(t, handle(t, h.svc, m).Messages, "answered once")
	assert.Regexp(t, `level=WARN msg="message taken over: the gateway that took it stopped before answering it" message_sid=SM-orphan .*key=sid`, h.logs.String())
	assert.Empty(t, unanswered(t, h), "both keys marked")
}

// Several gateways get the repeat at once: exactly one takes the delivery
// over and answers it.
func TestHandleRepeatTakenOverOnce(t *testing.T) {
	first := newHarness(t, nil)
	m := msg("SM-orphan", "hello?")
	takenBy(t, first.store, m, "gw-crashed")
	svcs := []*MessagesService{first.svc}
	for range 4 {
		svcs = append(svcs, newHarness(t, sharing(first)).svc)
	}
	var answered sync.Map
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, svc := range svcs {
		for range 3 {
			wg.Go(func() {
				<-start
				if r := handle(t, svc, m); len(r.Messages) > 0 {
					answered.Store(fmt.Sprint(i, r.Messages), true)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	n := 0
	answered.Range(func(any, any) bool { n++; return true })
	assert.Equal(t, 1, n, "one answer among all the repeats")
	assert.Equal(t, []string{"hello?"}, first.asst.Texts(firstThread), "one assistant call")
}

// A repeat that comes while the owner's lease is still live (a restart
// faster than the lease's ttl) waits: the owner's lease expires, the
// delivery is taken over and answered inline.
func TestHandleRepeatWaitsForOwnerLeaseToExpire(t *testing.T) {
	const ttl = 300 * time.Millisecond
	h := newHarness(t, withLease(t, ttl))
	m := msg("SM-restart", "still there?")
	require.NoError(t, h.store.Renew(context.Background(), "gw-just-died", ttl)) // its last renewal
	takenBy(t, h.store, m, "gw-just-died")

	start := time.Now()
	assert.Equal(t, []string{"echo: still there?"}, handle(t, h.svc, m).Messages)
	assert.GreaterOrEqual(t, time.Since(start), ttl/2, "it waited for the lease to expire")
	logs := h.logs.String()
	assert.Contains(t, logs, `msg="repeat of a message another gateway took: waiting for it to answer, or to stop without answering"`)
	assert.Contains(t, logs, `msg="message taken over`)
	assert.Empty(t, unanswered(t, h))
}

// When the takeover comes after the inline timeout, the answer goes out
// through the sender.
func TestHandleRepeatTakenOverLater(t *testing.T) {
	const ttl = 300 * time.Millisecond
	h := newHarness(t, func(d *MessagesDeps) { later(d); withLease(t, ttl)(d) })
	m := msg("SM-restart", "still there?")
	require.NoError(t, h.store.Renew(context.Background(), "gw-just-died", ttl))
	takenBy(t, h.store, m, "gw-just-died")

	assert.Empty(t, handle(t, h.svc, m).Messages)
	assert.Contains(t, h.logs.String(), `msg="repeat still waiting for the gateway that took the message: it is answered later if that gateway stopped"`)
	assert.Equal(t, []string{"echo: still there?"}, bodies(waitSent(t, h.sender, 1)))
}

// A repeat of a delivery whose owner is alive and answering it is not
// answered a second time: the repeat ends as a duplicate as soon as the
// owner has answered, whether the owner takes longer than the inline
// timeout or not.
func TestHandleRepeatWhileOwnerAnswers(t *testing.T) {
	owner := newHarness(t, later)
	other := newHarness(t, sharing(owner))
	release := owner.asst.Hold()
	m := msg("SM-slow", "a slow one")
	require.Empty(t, handle(t, owner.svc, m).Messages, "the owner answers later")
	waitCtx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := owner.asst.WaitTexts(waitCtx, firstThread, 1)
	require.NoError(t, err)

	repeat := make(chan ports.Reply, 1)
	go func() { repeat <- handle(t, other.svc, m) }()
	require.Eventually(t, func() bool { return strings.Contains(other.logs.String(), "waiting for it to answer") }, wait, time.Millisecond)
	release()
	assert.Empty(t, (<-repeat).Messages)
	assert.Regexp(t, `msg="duplicate delivery ignored" message_sid=SM-slow`, other.logs.String())
	assert.Equal(t, []string{"echo: a slow one"}, bodies(waitSent(t, owner.sender, 1)))
	require.NoError(t, other.svc.Shutdown(context.Background()))
	assert.Empty(t, other.sender.Sent(), "answered by its owner only")
	assert.Equal(t, []string{"a slow one"}, owner.asst.Texts(firstThread))
}

// A repeat of a delivery whose owner keeps its lease alive for longer than
// a lease's ttl without answering is the owner's to answer: the repeat
// gives up and is a duplicate.
func TestHandleRepeatGivesUpOnLiveOwner(t *testing.T) {
	owner := newHarness(t, later)
	const ttl = 200 * time.Millisecond
	other := newHarness(t, func(d *MessagesDeps) { sharing(owner)(d); withLease(t, ttl)(d) })
	release := owner.asst.Hold()
	m := msg("SM-slower", "a slower one")
	require.Empty(t, handle(t, owner.svc, m).Messages)

	start := time.Now()
	assert.Empty(t, handle(t, other.svc, m).Messages)
	assert.GreaterOrEqual(t, time.Since(start), ttl, "it watched for a whole ttl")
	assert.Contains(t, other.logs.String(), `msg="the gateway that took this message is alive: it answers it"`)
	release()
	assert.Equal(t, []string{"echo: a slower one"}, bodies(waitSent(t, owner.sender, 1)))
	assert.Empty(t, other.sender.Sent())
}

// The user's thread gone at the assistant: a new thread replaces it, the
// message is answered on it, and so are the next ones.
func TestHandleStaleThreadReplaced(t *testing.T) {
	h := newHarness(t, nil)
	assert.Equal(t, []string{"echo: first"}, handle(t, h.svc, msg("SM1", "first")).Messages)
	h.asst.DeleteThread(firstThread)

	assert.Equal(t, []string{"echo: second"}, handle(t, h.svc, msg("SM2", "second")).Messages)
	assert.Equal(t, []string{"echo: third"}, handle(t, h.svc, msg("SM3", "third")).Messages)
	threads := h.asst.Threads()
	require.Len(t, threads, 1, "one new thread")
	assert.Equal(t, []string{"second", "third"}, h.asst.Texts(threads[0]))
	id, err := h.store.Thread(context.Background(), "whatsapp:+15551234567")
	require.NoError(t, err)
	assert.Equal(t, threads[0], id, "stored for the user")
	assert.Regexp(t, `level=WARN msg="the assistant no longer knows the user's thread: starting a new one" message_sid=SM2 .*thread=`+firstThread, h.logs.String())
}

// A new thread that cannot be made, or that fails too, gives the usual
// apology.
func TestHandleStaleThreadNotReplaced(t *testing.T) {
	h := newHarness(t, nil)
	handle(t, h.svc, msg("SM1", "first"))
	h.asst.DeleteThread(firstThread)
	h.asst.FailNewThread(fmt.Errorf("conversations: create: %w", ports.ErrUnavailable))
	assert.Equal(t, []string{textApology}, handle(t, h.svc, msg("SM2", "second")).Messages)
	assert.Equal(t, []string{"echo: third"}, handle(t, h.svc, msg("SM3", "third")).Messages, "the next message tries again")
}

// timedSender records when each Send started.
type timedSender struct {
	*fake.MessageSender
	mu    sync.Mutex
	times []time.Time
}

func (s *timedSender) Send(ctx context.Context, m ports.OutboundMessage) (string, error) {
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	return s.MessageSender.Send(ctx, m)
}

// The parts of an answer sent later go out PartInterval apart, in order.
func TestHandlePartsPaced(t *testing.T) {
	const interval = 50 * time.Millisecond
	sender := &timedSender{MessageSender: fake.NewMessageSender()}
	h := newHarness(t, func(d *MessagesDeps) { d.PartInterval, d.Sender = interval, sender; setLimits(d, 40, 2, 0) })
	long := strings.Repeat("Twenty chars here. ", 10) // 5 parts of 40
	h.asst.QueueReplies(long)
	require.Empty(t, handle(t, h.svc, msg("SM1", "tell me a lot")).Messages)
	assert.Equal(t, strings.TrimSpace(long), strings.Join(bodies(waitSent(t, sender.MessageSender, 5)), " "))
	sender.mu.Lock()
	defer sender.mu.Unlock()
	for i := 1; i < len(sender.times); i++ {
		assert.GreaterOrEqual(t, sender.times[i].Sub(sender.times[i-1]), interval, "pause before part %d", i+1)
	}
}

// Shutdown's deadline during the pause between parts drops the rest, and
// logs it.
func TestHandlePausedPartsDroppedAtShutdown(t *testing.T) {
	h := newHarness(t, func(d *MessagesDeps) { d.PartInterval = time.Hour; setLimits(d, 40, 2, 0) })
	h.asst.QueueReplies(strings.Repeat("Twenty chars here. ", 10))
	require.Empty(t, handle(t, h.svc, msg("SM-paused", "tell me a lot")).Messages)
	waitSent(t, h.sender, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, h.svc.Shutdown(ctx), context.Canceled)
	assert.Len(t, h.sender.Sent(), 1)
	assert.Regexp(t, `msg="answer not delivered: shutting down" message_sid=SM-paused user=\S+ undelivered_chars=148`, h.logs.String())
}

// A send whose outcome is unknown (Twilio may have sent it) is logged as
// such, not repeated, and ends the answer: the later parts are not sent.
// The delivery counts as answered (it is not reported as never delivered).
func TestHandleSendOutcomeUnknown(t *testing.T) {
	h := newHarness(t, func(d *MessagesDeps) { setLimits(d, 40, 2, 0) })
	h.sender.LoseNext()
	h.asst.QueueReplies(strings.Repeat("Twenty chars here. ", 10))
	require.Empty(t, handle(t, h.svc, msg("SM-unknown", "tell me a lot")).Messages)
	require.Eventually(t, func() bool { return strings.Contains(h.logs.String(), "outcome is unknown") }, wait, time.Millisecond)
	assert.Empty(t, unanswered(t, h))

	assert.Len(t, h.sender.Sent(), 1, "the part that may have gone out, once")
	assert.Equal(t, 1, h.sender.Attempts(), "not repeated, and nothing after it")
	logs := h.logs.String()
	assert.Regexp(t, `level=ERROR msg="answer may or may not have been delivered: the send's outcome is unknown" message_sid=SM-unknown user=\S+ outcome=unknown part=1 parts=5 unknown_chars=37 undelivered_chars=148`, logs)
	assert.NotContains(t, logs, "answer not delivered")
}
