package porttest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// MessageSender runs the conformance suite of ports.MessageSender.
// newHarness is called once per subtest; subtests run in parallel. Every
// hook of the harness must be set. The provider behind the sender must
// refuse a body longer than the sender's Limits (as Twilio does).
func MessageSender(t *testing.T, newHarness func(t *testing.T) SenderHarness) {
	t.Run("Body", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		msg := ports.OutboundMessage{To: "whatsapp:+15551234567", Body: unique("Hello")}
		id, err := send(t, h.Sender, msg)
		require.NoError(t, err)
		assert.NotEmpty(t, id)
		requireSent(t, h, msg)
	})

	t.Run("SMS", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		msg := ports.OutboundMessage{To: "+15551234567", Body: unique("Hello")}
		_, err := send(t, h.Sender, msg)
		require.NoError(t, err)
		requireSent(t, h, msg)
	})

	t.Run("Template", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		msg := ports.OutboundMessage{
			To:               "whatsapp:+15551234567",
			ContentSID:       "HX" + fmt.Sprintf("%032x", 42),
			ContentVariables: map[string]string{"1": "Ana", "2": unique("code")},
		}
		id, err := send(t, h.Sender, msg)
		require.NoError(t, err)
		assert.NotEmpty(t, id)
		requireSent(t, h, msg)
	})

	t.Run("Limits", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		l := h.Sender.Limits()
		require.Positive(t, l.MaxChars)
		require.Positive(t, l.MaxReplyMessages)
		require.Positive(t, l.MaxReplyBytes)
		assert.Equal(t, l, h.Sender.Limits(), "the same limits every time")
		// Characters, not bytes: "é" is two bytes.
		longest := ports.OutboundMessage{To: "whatsapp:+15551234567", Body: strings.Repeat("é", l.MaxChars)}
		_, err := send(t, h.Sender, longest)
		require.NoError(t, err, "a body of MaxChars characters")
		requireSent(t, h, longest)
		_, err = send(t, h.Sender, ports.OutboundMessage{To: "whatsapp:+15551234567", Body: strings.Repeat("é", l.MaxChars+1)})
		require.ErrorIs(t, err, ports.ErrRejected, "a body of one character more")
		assert.Len(t, h.Sent(), 1, "the longer body was not sent")
	})

	t.Run("Rejected", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.RejectNext()
		_, err := send(t, h.Sender, ports.OutboundMessage{To: "whatsapp:+15551234567", Body: "refused"})
		require.ErrorIs(t, err, ports.ErrRejected)
		msg := ports.OutboundMessage{To: "whatsapp:+15551234567", Body: unique("accepted")}
		_, err = send(t, h.Sender, msg)
		require.NoError(t, err, "only the next message is refused")
		requireSent(t, h, msg)
	})

	t.Run("RateLimitedIsRetried", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.RateLimitNext()
		msg := ports.OutboundMessage{To: "whatsapp:+15551234567", Body: unique("busy hour")}
		id, err := send(t, h.Sender, msg)
		require.NoError(t, err, "a rate limit is retried")
		assert.NotEmpty(t, id)
		requireSent(t, h, msg)
		assert.Len(t, h.Sent(), 1, "sent once")
	})

	t.Run("OutcomeUnknownIsNotRepeated", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.LoseNext()
		msg := ports.OutboundMessage{To: "whatsapp:+15551234567", Body: unique("lost answer")}
		_, err := send(t, h.Sender, msg)
		require.ErrorIs(t, err, ports.ErrOutcomeUnknown)
		require.ErrorIs(t, err, ports.ErrUnavailable)
		assert.Len(t, h.Sent(), 1, "accepted once, never repeated")
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ctx := stepCtx(t)
		const n = 10
		ids := make([]string, n)
		bodies := make(map[string]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			body := unique(fmt.Sprintf("body %d", i))
			bodies[body] = true
			wg.Go(func() {
				id, err := h.Sender.Send(ctx, ports.OutboundMessage{To: "whatsapp:+15551234567", Body: body})
				if err != nil {
					t.Errorf("Send %d: %v", i, err)
				}
				ids[i] = id
			})
		}
		waitGroup(t, "concurrent sends", &wg)
		seen := make(map[string]bool, n)
		for _, id := range ids {
			require.NotEmpty(t, id)
			require.False(t, seen[id], "message ids are distinct")
			seen[id] = true
		}
		for _, m := range h.Sent() {
			delete(bodies, m.Body)
		}
		assert.Empty(t, bodies, "every message arrived")
	})
}

func send(t *testing.T, s ports.MessageSender, msg ports.OutboundMessage) (string, error) {
	t.Helper()
	return within(t, "Send", func(ctx context.Context) (string, error) {
		return s.Send(ctx, msg)
	})
}

// requireSent checks that the provider accepted want (From aside: the
// sender may fill in its default).
func requireSent(t *testing.T, h SenderHarness, want ports.OutboundMessage) {
	t.Helper()
	for _, got := range h.Sent() {
		got.From = want.From
		if len(got.ContentVariables) == 0 && len(want.ContentVariables) == 0 {
			got.ContentVariables = want.ContentVariables
		}
		if assert.ObjectsAreEqual(want, got) {
			return
		}
	}
	t.Fatalf("the provider did not receive %+v; it has %+v", want, h.Sent())
}
