package fake_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
)

func TestChatAssistantScript(t *testing.T) {
	ctx := testCtx(t)
	a := fake.NewChatAssistant()
	id, err := a.NewThread(ctx)
	require.NoError(t, err)

	a.QueueReplies("first", "second")
	a.FailNext(ports.ErrUnavailable)
	_, err = a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "one"})
	require.ErrorIs(t, err, ports.ErrUnavailable, "a queued error comes first")
	got, err := a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "two"})
	require.NoError(t, err)
	assert.Equal(t, "second", got, "the failed call used up its queued answer")
	got, err = a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "three"})
	require.NoError(t, err)
	assert.Equal(t, fake.EchoPrefix+"three", got)
	assert.Equal(t, []string{"one", "two", "three"}, a.Texts(id))

	a.FailNewThread(ports.ErrRejected)
	_, err = a.NewThread(ctx)
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Equal(t, []string{id}, a.Threads())

	a.DeleteThread(id)
	_, err = a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: "four"})
	require.ErrorIs(t, err, ports.ErrNotFound, "a deleted thread is unknown")
	fresh, err := a.NewThread(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, id, fresh, "a new thread never reuses a deleted one's id")
	assert.Equal(t, []string{fresh}, a.Threads())
}

func TestChatAssistantHoldAndOverlaps(t *testing.T) {
	ctx := testCtx(t)
	a := fake.NewChatAssistant()
	id, err := a.NewThread(ctx)
	require.NoError(t, err)
	release := a.Hold()
	var wg sync.WaitGroup
	for _, text := range []string{"a", "b"} {
		wg.Go(func() {
			_, err := a.Reply(ctx, ports.ChatRequest{ThreadID: id, Text: text})
			assert.NoError(t, err)
		})
	}
	_, err = a.WaitTexts(ctx, id, 2)
	require.NoError(t, err)
	release()
	wg.Wait()
	assert.Equal(t, 1, a.Overlaps(), "two replies ran at once on one thread")

	// A held reply honours its context.
	release = a.Hold()
	defer release()
	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Reply(short, ports.ChatRequest{ThreadID: id, Text: "c"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestMessageSenderScript(t *testing.T) {
	ctx := testCtx(t)
	s := fake.NewMessageSender()
	_, err := s.Send(ctx, ports.OutboundMessage{To: "+1555", Body: "x", ContentSID: "HX1"})
	require.ErrorIs(t, err, ports.ErrRejected, "body and template together")
	_, err = s.Send(ctx, ports.OutboundMessage{Body: "x"})
	require.ErrorIs(t, err, ports.ErrRejected, "no recipient")

	s.FailNext(ports.ErrUnavailable)
	_, err = s.Send(ctx, ports.OutboundMessage{To: "+1555", Body: "x"})
	require.ErrorIs(t, err, ports.ErrUnavailable)

	go func() { _, _ = s.Send(ctx, ports.OutboundMessage{To: "+1555", Body: "late"}) }()
	sent, err := s.WaitSent(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "late", sent[0].Body)
}

func TestStoresDown(t *testing.T) {
	ctx := testCtx(t)
	threads, tokens := fake.NewThreadStore(), fake.NewTokenStore()
	tok, _, err := tokens.Issue(ctx, "CA1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, []fake.IssuedToken{{Token: tok, CallSid: "CA1", TTL: time.Minute}}, tokens.Issued())
	for _, key := range []string{"sid:SM-taken", "sid:SM-answered"} {
		first, err := threads.FirstSeen(ctx, key, "gw-stopped")
		require.NoError(t, err)
		require.True(t, first)
	}

	threads.Down(ports.ErrUnavailable)
	tokens.Down(ports.ErrUnavailable)
	require.ErrorIs(t, threads.Ping(ctx), ports.ErrUnavailable)
	_, err = threads.LockUser(ctx, "u")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.ErrorIs(t, tokens.Consume(ctx, tok, "CA1"), ports.ErrUnavailable)
	require.ErrorIs(t, threads.Delivered(ctx, "sid:SM-answered"), ports.ErrUnavailable)
	require.ErrorIs(t, threads.Renew(ctx, "gw-1", time.Minute), ports.ErrUnavailable)
	_, err = threads.TakeOver(ctx, "sid:SM-taken", "gw-1")
	require.ErrorIs(t, err, ports.ErrUnavailable)
	keys, err := threads.Abandoned(ctx, 0)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Empty(t, keys)

	threads.Down(nil)
	tokens.Down(nil)
	require.NoError(t, threads.Ping(ctx))
	require.NoError(t, tokens.Consume(ctx, tok, "CA1"), "the token survived the outage")
	keys, err = threads.Abandoned(ctx, 0)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"sid:SM-taken", "sid:SM-answered"}, keys,
		"nothing was claimed or marked while the store was down")
}

func TestCallsDefaults(t *testing.T) {
	ctx := testCtx(t)
	c := fake.NewCalls()
	ans, err := c.Answer(ctx, ports.IncomingCall{CallID: "CA1"})
	require.NoError(t, err)
	assert.Len(t, ans.Token, 43)
	assert.Equal(t, "CA1", c.Incoming()[0].CallID)

	ch, peer := fake.NewTelephony()
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ch) }()
	require.NoError(t, c.WaitActive(ctx, 1))
	require.NoError(t, peer.HangUp(ctx))
	require.NoError(t, c.WaitServed(ctx, 1))
	require.NoError(t, <-done, "a hang-up is a normal end")
	ended, reason := peer.Ended()
	assert.True(t, ended, "Serve ends the channel")
	assert.Equal(t, ports.EndCompleted, reason)

	boom := errors.New("boom")
	c.SetServe(func(context.Context, ports.TelephonyChannel) error { return boom })
	require.ErrorIs(t, c.Serve(ctx, ch), boom)
}

func TestMessagesDefaults(t *testing.T) {
	ctx := testCtx(t)
	m := fake.NewMessages()
	reply, err := m.Handle(ctx, ports.InboundMessage{MessageSid: "MM1", Body: "hi"})
	require.NoError(t, err)
	assert.Equal(t, []string{fake.EchoPrefix + "hi"}, reply.Messages)

	m.SetHandle(func(context.Context, ports.InboundMessage) (ports.Reply, error) {
		return ports.Reply{}, ports.ErrInvalidInput
	})
	_, err = m.Handle(ctx, ports.InboundMessage{MessageSid: "MM2"})
	require.ErrorIs(t, err, ports.ErrInvalidInput)
	got, err := m.WaitReceived(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, "MM2", got[1].MessageSid)
}
