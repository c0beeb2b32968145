package app

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
)

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
	h := newHarness(t, func(d *MessagesDeps) { d.MaxLen, d.MaxInlineParts, d.PartInterval, d.Sender = 40, 2, interval, sender })
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
	h := newHarness(t, func(d *MessagesDeps) { d.MaxLen, d.MaxInlineParts, d.PartInterval = 40, 2, time.Hour })
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
	h := newHarness(t, func(d *MessagesDeps) { d.MaxLen, d.MaxInlineParts = 40, 2 })
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
