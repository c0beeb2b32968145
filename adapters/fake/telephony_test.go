package fake_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// ms20 is 20 ms of mu-law silence, base64.
const ms20 = "/////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////////w=="

func TestTelephonyAutoPlay(t *testing.T) {
	ctx := testCtx(t)
	ch, p := fake.NewTelephony()
	defer ch.End(ports.EndCompleted)
	p.AutoPlay(true)
	require.NoError(t, ch.Play(ctx, []byte(ms20)))
	ev, err := ch.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.CallPlayed, ev.Type)
	assert.Equal(t, int64(20), ev.PlayedMs)
}

func TestTelephonyWaitReceivedAndEnded(t *testing.T) {
	ctx := testCtx(t)
	ch, p := fake.NewTelephony()
	go func() {
		_ = ch.Play(ctx, []byte("AAAA"))
		_ = ch.Clear(ctx)
		_ = ch.End(ports.EndRefused)
	}()
	got, err := p.WaitReceived(ctx, func(out []peer.Outbound) bool { return len(out) == 2 })
	require.NoError(t, err)
	assert.Equal(t, peer.OutClear, got[1].Kind)
	reason, err := p.WaitEnded(ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.EndRefused, reason)
}

func TestTelephonyStartAndDisconnect(t *testing.T) {
	ctx := testCtx(t)
	ch, p := fake.NewTelephony()
	defer ch.End(ports.EndCompleted)
	require.NoError(t, p.Start(ctx, ports.CallInfo{CallID: "CA1", Params: map[string]string{"token": "t"}}))
	require.NoError(t, p.Audio(ctx, 20, []byte("AAAA")))
	require.NoError(t, p.Disconnect(ctx))

	var types []ports.CallEventType
	var err error
	for err == nil {
		var ev ports.CallEvent
		ev, err = ch.Recv(ctx)
		if err == nil {
			types = append(types, ev.Type)
		}
	}
	assert.Equal(t, []ports.CallEventType{ports.CallStarted, ports.CallAudio}, types)
	var ended *ports.SessionEnded
	require.True(t, errors.As(err, &ended))
	assert.Equal(t, "remote_closed", ended.Reason)
	gone, _ := p.Ended()
	assert.False(t, gone, "the channel did not end the call itself")
}

func TestTelephonyPlayNextAndClear(t *testing.T) {
	ctx := testCtx(t)
	ch, p := fake.NewTelephony()
	defer ch.End(ports.EndCompleted)
	for range 3 {
		require.NoError(t, ch.Play(ctx, []byte(ms20)))
	}
	pos, err := p.PlayNext(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(20), pos)
	assert.Equal(t, 2, p.Queued())

	require.NoError(t, ch.Clear(ctx))
	assert.Zero(t, p.Queued(), "a clear reports the queued audio as done")
	_, err = p.PlayNext(ctx)
	require.ErrorIs(t, err, ports.ErrNotFound)

	var played []int64
	for range 3 {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.CallPlayed, ev.Type)
		played = append(played, ev.PlayedMs)
	}
	assert.Equal(t, []int64{20, 40, 60}, played, "played, then cleared, in order")
}
