package mediasim_test

import (
	"context"
	"encoding/base64"
	"fmt"
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
	"github.com/convgateway/gateway/ports/peer"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connect returns a started call: the gateway side as a mediastream
// Channel, the Twilio side as a Caller on the given clock.
func connect(t *testing.T, clock mediasim.Clock) (*mediastream.Channel, *mediasim.Caller, *http.Header) {
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
		URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/media-stream", Signature: "sig", Clock: clock,
	})
	require.NoError(t, err)
	ch := <-chans
	t.Cleanup(func() {
		_ = caller.Close()
		_ = ch.End(ports.EndCompleted)
	})
	call := ports.CallInfo{CallID: "CA1", From: "+15551230000", To: "+15551239999", Params: map[string]string{"token": "t"}}
	require.NoError(t, caller.Start(ctx, call))
	ev := nextEvent(t, ch, ports.CallStarted)
	assert.Equal(t, call, ev.Call, "the numbers travel as custom parameters")
	assert.Equal(t, "MZ1", caller.StreamSid())
	return ch, caller, &header
}

// nextEvent waits for the next event of type typ on the gateway side.
func nextEvent(t *testing.T, ch *mediastream.Channel, typ ports.CallEventType) ports.CallEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		if ev.Type == typ {
			return ev
		}
	}
}

// playedUpTo waits until the gateway side hears that ms of its audio
// played, and checks that positions never go backwards.
func playedUpTo(t *testing.T, ch *mediastream.Channel, ms int64) {
	t.Helper()
	var played int64
	for played < ms {
		ev := nextEvent(t, ch, ports.CallPlayed)
		require.GreaterOrEqual(t, ev.PlayedMs, played, "positions never go backwards")
		played = ev.PlayedMs
	}
	require.Equal(t, ms, played)
}

func chunk(b byte) []byte {
	raw := make([]byte, 160)
	for i := range raw {
		raw[i] = b
	}
	return []byte(base64.StdEncoding.EncodeToString(raw))
}

// markNames returns the names of marks.
func markNames(marks []mediasim.MarkEcho) []string {
	names := make([]string, len(marks))
	for i, m := range marks {
		names[i] = m.Name
	}
	return names
}

// events returns the events of frames.
func events(frames []mediasim.Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.Event
	}
	return out
}

func TestMarkEchoedAfterAudioPlayed(t *testing.T) {
	ch, caller, header := connect(t, mediasim.Faster(20))
	assert.Equal(t, "sig", header.Get("X-Twilio-Signature"))
	ctx := t.Context()

	for range 5 {
		require.NoError(t, ch.Play(ctx, chunk(0x42)))
	}
	playedUpTo(t, ch, 100)
	assert.Len(t, caller.Played(), 5*160, "the last mark came back after all audio before it played")
	marks := caller.Marks()
	require.Len(t, marks, 5)
	for _, m := range marks {
		assert.False(t, m.Flushed)
	}
	assert.Equal(t, []string{"media", "mark", "media", "mark", "media", "mark", "media", "mark", "media", "mark"}, events(caller.Frames()))
	assert.Equal(t, 5, peer.Count(caller.Received(), peer.OutAudio), "marks are the provider's business")
	first, ok := caller.FirstAudio()
	assert.True(t, ok)
	assert.Positive(t, first)
}

func TestClearFlushesAndEchoesPendingMarks(t *testing.T) {
	ch, caller, _ := connect(t, mediasim.Faster(20))
	ctx := t.Context()
	for range 100 { // 2 s of audio, 100 ms on the fast clock
		require.NoError(t, ch.Play(ctx, chunk(0x42)))
	}
	require.NoError(t, ch.Clear(ctx))
	playedUpTo(t, ch, 2000) // cleared audio counts as done

	marks := caller.Marks()
	require.Len(t, marks, 100)
	assert.True(t, marks[99].Flushed, "the last mark was flushed by the clear, not played")
	for i, m := range marks {
		assert.Equal(t, fmt.Sprintf("m%d", i+1), m.Name, "echoes come in the order sent")
	}
	assert.Len(t, caller.Clears(), 1)
	assert.Less(t, len(caller.Played()), 100*160, "cleared audio is not played")

	want := make([]string, 0, 201)
	for range 100 {
		want = append(want, "media", "mark")
	}
	assert.Equal(t, append(want, "clear"), events(caller.Frames()))
	out := caller.Received()
	require.Len(t, out, 101)
	assert.Equal(t, peer.OutClear, out[100].Kind)
}

// PlayOut plays what is queued at once, whatever the clock.
func TestPlayOutPlaysTheQueueAtOnce(t *testing.T) {
	ch, caller, _ := connect(t, mediasim.RealTime)
	ctx := t.Context()
	const chunks = 500 // 10 s of audio
	for range chunks {
		require.NoError(t, ch.Play(ctx, chunk(0x42)))
	}
	require.Eventually(t, func() bool { return len(caller.Frames()) == 2*chunks }, 5*time.Second, time.Millisecond,
		"the caller has read everything")
	require.NoError(t, caller.PlayOut(ctx))
	assert.Len(t, caller.Played(), chunks*160, "all of it played")
	playedUpTo(t, ch, chunks*20)
	names := markNames(caller.Marks())
	require.Len(t, names, chunks)
	for i, name := range names {
		assert.Equal(t, fmt.Sprintf("m%d", i+1), name, "echoes come in the order sent")
	}
}

func TestSpeakSendsTwentyMillisecondFrames(t *testing.T) {
	ch, caller, _ := connect(t, mediasim.Faster(20))
	ctx := t.Context()
	audio := mulaw.Tone(300, 60)
	errc := make(chan error, 1)
	go func() { errc <- caller.Speak(ctx, audio, true) }()
	var got []byte
	var stamps []int64
	for len(got) < len(audio) {
		ev, err := ch.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, ports.CallAudio, ev.Type)
		raw, err := base64.StdEncoding.DecodeString(string(ev.Audio))
		require.NoError(t, err)
		got = append(got, raw...)
		stamps = append(stamps, ev.MediaMs)
	}
	require.NoError(t, <-errc)
	assert.Equal(t, audio, got)
	assert.Equal(t, []int64{20, 40, 60}, stamps)
}

func TestHangUpEndsTheStream(t *testing.T) {
	ch, caller, _ := connect(t, mediasim.Faster(20))
	ctx := t.Context()
	require.NoError(t, caller.Key(ctx, "7"))
	assert.Equal(t, "7", nextEvent(t, ch, ports.CallKey).Key)

	errc := make(chan error, 1)
	go func() { errc <- caller.HangUp(ctx) }()
	ev, err := ch.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, ports.CallHungUp, ev.Type)
	_, err = ch.Recv(ctx)
	require.ErrorIs(t, err, ports.ErrClosed)
	require.NoError(t, <-errc)
	<-caller.Done()
	closed, _ := caller.Closed()
	assert.False(t, closed, "the caller hung up, the gateway did not close the stream")
	ended, _ := caller.Ended()
	assert.False(t, ended)
}

func TestGatewayEndIsSeen(t *testing.T) {
	for reason, code := range map[ports.EndReason]websocket.StatusCode{
		ports.EndCompleted: websocket.StatusNormalClosure,
		ports.EndRefused:   websocket.StatusPolicyViolation,
	} {
		t.Run(reason.String(), func(t *testing.T) {
			ch, caller, _ := connect(t, mediasim.Faster(20))
			require.NoError(t, ch.End(reason))
			<-caller.Done()
			closed, got := caller.Closed()
			assert.True(t, closed)
			assert.Equal(t, int(code), got)
			ended, why := caller.Ended()
			assert.True(t, ended)
			assert.Equal(t, reason, why)
		})
	}
}
