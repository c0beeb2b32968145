package fake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSpeechModelSessions(t *testing.T) {
	ctx := testCtx(t)
	m := fake.NewSpeechModel()
	got := make(chan *fake.SpeechSession, 1)
	go func() {
		s, err := m.Session(ctx, 1)
		assert.NoError(t, err)
		got <- s
	}()
	first, err := m.Open(ctx, ports.SpeechConfig{CallID: "CA1"})
	require.NoError(t, err)
	defer first.Close()
	second, err := m.Open(ctx, ports.SpeechConfig{CallID: "CA2"})
	require.NoError(t, err)
	defer second.Close()

	s := <-got
	assert.Same(t, second, s, "Session(1) waits for the second session")
	assert.Equal(t, "CA2", s.Config().CallID)
	assert.Len(t, m.Sessions(), 2)
}

func TestSpeechModelOpenScript(t *testing.T) {
	ctx := testCtx(t)
	m := fake.NewSpeechModel()
	m.FailOpen(ports.ErrUnavailable)
	_, err := m.Open(ctx, ports.SpeechConfig{})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	s, err := m.Open(ctx, ports.SpeechConfig{})
	require.NoError(t, err, "only the next Open fails")
	require.NoError(t, s.Close())

	m.SetOpenDelay(time.Hour)
	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Open(short, ports.SpeechConfig{})
	require.ErrorIs(t, err, context.Canceled, "a slow open honours ctx")
}

func TestSpeechSessionWaitSentAndDone(t *testing.T) {
	ctx := testCtx(t)
	m := fake.NewSpeechModel()
	client, err := m.Open(ctx, ports.SpeechConfig{})
	require.NoError(t, err)
	s, err := m.Session(ctx, 0)
	require.NoError(t, err)

	go func() {
		_ = client.Respond(ctx, "hi")
		_ = client.Heard(ctx, "u1", 250)
	}()
	sent, err := s.WaitSent(ctx, func(s fake.SpeechSent) bool { return len(s.Heard) == 1 })
	require.NoError(t, err)
	assert.Equal(t, []string{"hi"}, sent.Responses)
	assert.Equal(t, 250, sent.Heard[0].Ms)

	s.FailSends(ports.ErrUnavailable)
	require.ErrorIs(t, client.AppendAudio(ctx, []byte("AAAA")), ports.ErrUnavailable)
	s.FailSends(nil)
	require.NoError(t, client.AppendAudio(ctx, []byte("AAAA")))

	go client.Close()
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after Close")
	}
	require.ErrorIs(t, s.StartSpeech(ctx, "item"), ports.ErrClosed, "the peer cannot emit after Close")
}

func TestSpeechSessionEndReason(t *testing.T) {
	ctx := testCtx(t)
	m := fake.NewSpeechModel()
	client, err := m.Open(ctx, ports.SpeechConfig{})
	require.NoError(t, err)
	defer client.Close()
	s, err := m.Session(ctx, 0)
	require.NoError(t, err)

	require.NoError(t, s.StartSpeech(ctx, "item_1"))
	require.NoError(t, s.End(ctx, "session_limit"))
	require.ErrorIs(t, client.Respond(ctx, "late"), ports.ErrClosed, "sends fail once the model ended")

	ev, err := client.Recv(ctx)
	require.NoError(t, err, "events queued before the end are delivered")
	assert.Equal(t, ports.SpeechCallerStarted, ev.Type)
	_, err = client.Recv(ctx)
	var ended *ports.SessionEnded
	require.True(t, errors.As(err, &ended))
	assert.Equal(t, "session_limit", ended.Reason)
}

func TestSpeechSessionTools(t *testing.T) {
	ctx := testCtx(t)
	m := fake.NewSpeechModel()
	client, err := m.Open(ctx, ports.SpeechConfig{Tools: []ports.ToolSpec{{Name: "end_call"}}})
	require.NoError(t, err)
	defer client.Close()
	s, err := m.Session(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, "end_call", s.Config().Tools[0].Name)

	require.NoError(t, s.CallTool(ctx, ports.ToolCall{Name: "end_call"}))
	require.NoError(t, s.CallTool(ctx, ports.ToolCall{Name: "end_call"}))
	var ids []string
	for range 2 {
		ev, err := client.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.SpeechToolCall, ev.Type)
		assert.Equal(t, "end_call", ev.Tool.Name)
		assert.JSONEq(t, `{}`, string(ev.Tool.Arguments), "no arguments: an empty object")
		ids = append(ids, ev.Tool.ID)
	}
	assert.NotEmpty(t, ids[0])
	assert.NotEqual(t, ids[0], ids[1], "generated ids are distinct")

	r := ports.ToolResult{CallID: ids[0], Error: "the tool did not answer in time"}
	require.NoError(t, client.ToolResult(ctx, r))
	assert.Equal(t, []ports.ToolResult{r}, s.ToolResults())
	assert.Equal(t, []ports.ToolResult{r}, m.Peer().ToolResults())
	s.FailSends(ports.ErrUnavailable)
	require.ErrorIs(t, client.ToolResult(ctx, r), ports.ErrUnavailable)
}
