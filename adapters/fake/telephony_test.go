package fake_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

func TestTelephonyEchoMarks(t *testing.T) {
	ctx := testCtx(t)
	ch, peer := fake.NewTelephony()
	defer ch.Close("test", false)
	peer.EchoMarks(true)
	require.NoError(t, ch.SendAudio(ctx, []byte("AAAA")))
	require.NoError(t, ch.SendMark(ctx, "m1"))
	ev, err := ch.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.CallMark, ev.Type)
	assert.Equal(t, "m1", ev.Mark)
}

func TestTelephonyWaitReceivedAndClosed(t *testing.T) {
	ctx := testCtx(t)
	ch, peer := fake.NewTelephony()
	go func() {
		_ = ch.SendAudio(ctx, []byte("AAAA"))
		_ = ch.Clear(ctx)
		_ = ch.Close("invalid_token", true)
	}()
	got, err := peer.WaitReceived(ctx, func(out []porttest.Outbound) bool { return len(out) == 2 })
	require.NoError(t, err)
	assert.Equal(t, "clear", got[1].Kind)
	reason, code, err := peer.WaitClosed(ctx)
	require.NoError(t, err)
	assert.Equal(t, "invalid_token", reason)
	assert.Equal(t, porttest.ClosePolicy, code)
}

func TestTelephonyStartAndDisconnect(t *testing.T) {
	ctx := testCtx(t)
	ch, peer := fake.NewTelephony()
	defer ch.Close("test", false)
	require.NoError(t, peer.Start(ctx, "CA1", "MZ1", map[string]string{"token": "t"}))
	require.NoError(t, peer.Media(ctx, 20, []byte("AAAA")))
	require.NoError(t, peer.Disconnect(ctx))

	var types []ports.CallEventType
	var err error
	for err == nil {
		var ev ports.CallEvent
		ev, err = ch.Recv(ctx)
		if err == nil {
			types = append(types, ev.Type)
			assert.Equal(t, "MZ1", ev.StreamSid, "%s carries the stream sid", ev.Type)
		}
	}
	assert.Equal(t, []ports.CallEventType{ports.CallConnected, ports.CallStart, ports.CallMedia}, types)
	var ended *ports.SessionEnded
	require.True(t, errors.As(err, &ended))
	assert.Equal(t, "remote_closed", ended.Reason)
	closed, _ := peer.Closed()
	assert.False(t, closed, "the channel did not close the stream itself")
}

func TestTelephonyPlayMarksAndClear(t *testing.T) {
	ctx := testCtx(t)
	ch, peer := fake.NewTelephony()
	defer ch.Close("test", false)
	for _, m := range []string{"m1", "m2", "m3"} {
		require.NoError(t, ch.SendAudio(ctx, []byte("AAAA")))
		require.NoError(t, ch.SendMark(ctx, m))
	}
	name, err := peer.PlayMark(ctx)
	require.NoError(t, err)
	assert.Equal(t, "m1", name)
	assert.Equal(t, []string{"m2", "m3"}, peer.PendingMarks())

	require.NoError(t, ch.Clear(ctx))
	assert.Empty(t, peer.PendingMarks(), "a clear flushes the pending marks")
	_, err = peer.PlayMark(ctx)
	require.ErrorIs(t, err, ports.ErrNotFound)

	var marks []string
	for range 3 {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.CallMark, ev.Type)
		marks = append(marks, ev.Mark)
	}
	assert.Equal(t, []string{"m1", "m2", "m3"}, marks, "played, then flushed by the clear, in order")
}
