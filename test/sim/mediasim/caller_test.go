package mediasim_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/twilio/mediastream"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connect returns a started call: the gateway side as a mediastream
// Channel, the Twilio side as a Caller on a clock 20 times real time.
func connect(t *testing.T) (*mediastream.Channel, *mediasim.Caller, *http.Header) {
	t.Helper()
	chans := make(chan *mediastream.Channel, 1)
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		chans <- mediastream.New(conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	caller, err := mediasim.Dial(ctx, mediasim.Options{
		URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/media-stream", Signature: "sig", Clock: mediasim.Faster(20),
	})
	require.NoError(t, err)
	ch := <-chans
	t.Cleanup(func() {
		_ = caller.Close()
		_ = ch.Close("test_end", false)
	})
	require.NoError(t, caller.Start(ctx, "CA1", "MZ1", map[string]string{"token": "t"}))
	for {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		if ev.Type == ports.CallStart {
			break
		}
	}
	return ch, caller, &header
}

// nextMark waits for the next mark echo on the gateway side.
func nextMark(t *testing.T, ch *mediastream.Channel) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		if ev.Type == ports.CallMark {
			return ev.Mark
		}
	}
}

func chunk(b byte) []byte {
	raw := make([]byte, 160)
	for i := range raw {
		raw[i] = b
	}
	return []byte(base64.StdEncoding.EncodeToString(raw))
}

func TestMarkEchoedAfterAudioPlayed(t *testing.T) {
	ch, caller, header := connect(t)
	assert.Equal(t, "sig", header.Get("X-Twilio-Signature"))
	ctx := t.Context()

	require.NoError(t, ch.SendMark(ctx, "empty"))
	assert.Equal(t, "empty", nextMark(t, ch), "a mark with nothing buffered is echoed at once")

	for range 5 {
		require.NoError(t, ch.SendAudio(ctx, chunk(0x42)))
	}
	require.NoError(t, ch.SendMark(ctx, "m1"))
	assert.Equal(t, "m1", nextMark(t, ch))
	assert.Len(t, caller.Played(), 5*160, "the mark came back after all audio before it played")
	marks := caller.Marks()
	require.Len(t, marks, 2)
	assert.False(t, marks[1].Flushed)
	first, ok := caller.FirstAudio()
	assert.True(t, ok)
	assert.Positive(t, first)
}

func TestClearFlushesAndEchoesPendingMarks(t *testing.T) {
	ch, caller, _ := connect(t)
	ctx := t.Context()
	for range 100 { // 2 s of audio, 100 ms on the fast clock
		require.NoError(t, ch.SendAudio(ctx, chunk(0x42)))
	}
	require.NoError(t, ch.SendMark(ctx, "m2"))
	require.NoError(t, ch.Clear(ctx))
	assert.Equal(t, "m2", nextMark(t, ch))

	marks := caller.Marks()
	require.Len(t, marks, 1)
	assert.True(t, marks[0].Flushed, "the mark was flushed by the clear, not played")
	assert.Len(t, caller.Clears(), 1)
	assert.Less(t, len(caller.Played()), 100*160, "cleared audio is not played")

	kinds := []string{}
	for _, o := range caller.Received() {
		kinds = append(kinds, o.Kind)
	}
	assert.Equal(t, append(append(make([]string, 0, 102), repeat("media", 100)...), "mark", "clear"), kinds)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestSpeakSendsTwentyMillisecondFrames(t *testing.T) {
	ch, caller, _ := connect(t)
	ctx := t.Context()
	audio := mulaw.Tone(300, 60)
	errc := make(chan error, 1)
	go func() { errc <- caller.Speak(ctx, audio, true) }()
	var got []byte
	var stamps []int64
	for len(got) < len(audio) {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.CallMedia, ev.Type)
		raw, err := base64.StdEncoding.DecodeString(string(ev.Payload))
		require.NoError(t, err)
		got = append(got, raw...)
		stamps = append(stamps, ev.TimestampMs)
	}
	require.NoError(t, <-errc)
	assert.Equal(t, audio, got)
	assert.Equal(t, []int64{20, 40, 60}, stamps)
}

func TestStopEndsTheStream(t *testing.T) {
	ch, caller, _ := connect(t)
	ctx := t.Context()
	require.NoError(t, caller.DTMF(ctx, "7"))
	ev, err := ch.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, "7", ev.Digit)

	errc := make(chan error, 1)
	go func() { errc <- caller.Stop(ctx) }()
	ev, err = ch.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.CallStop, ev.Type)
	_, err = ch.Recv(ctx)
	require.ErrorIs(t, err, ports.ErrClosed)
	require.NoError(t, <-errc)
	<-caller.Done()
	closed, _ := caller.Closed()
	assert.False(t, closed, "the caller hung up, the gateway did not close the stream")
}

func TestGatewayCloseIsSeen(t *testing.T) {
	ch, caller, _ := connect(t)
	require.NoError(t, ch.Close("invalid_token", true))
	<-caller.Done()
	closed, code := caller.Closed()
	assert.True(t, closed)
	assert.Equal(t, int(websocket.StatusPolicyViolation), code)
}
