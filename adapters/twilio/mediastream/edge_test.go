package mediastream_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// startFrame is a valid start event.
const startFrame = `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1",` +
	`"tracks":["inbound"],"customParameters":{"token":"t"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},` +
	`"streamSid":"MZ1"}`

// started sends the start event and receives it.
func (p *pair) started(t *testing.T) {
	t.Helper()
	p.send(t, startFrame)
	require.Equal(t, ports.CallStarted, p.recv(t).Type)
}

func mediaFrame(payload string) string {
	return `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"` +
		payload + `"},"streamSid":"MZ1"}`
}

// recvEnd receives until the stream ends and returns why.
func recvEnd(t *testing.T, p *pair) *ports.SessionEnded {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		_, err := p.ch.Recv(ctx)
		if err == nil {
			continue
		}
		require.ErrorIs(t, err, ports.ErrClosed)
		var ended *ports.SessionEnded
		require.ErrorAs(t, err, &ended)
		return ended
	}
}

// clientClose reads the client end until the channel closes it.
func clientClose(t *testing.T, p *pair) <-chan websocket.CloseError {
	t.Helper()
	out := make(chan websocket.CloseError, 1)
	go func() {
		for {
			if _, _, err := p.client.Read(context.Background()); err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) {
					ce.Code = -1
				}
				out <- ce
				return
			}
		}
	}()
	return out
}

func TestBadFramesBeforeStartCloseTheStream(t *testing.T) {
	p := newPair(t)
	closed := clientClose(t, p)
	for _, f := range []string{"x", `{"event":"media"`, `{"event":"mark","mark":{"name":"m"}}`, "[]", `{"event":"dtmf","dtmf":{"digit":"1"}}`} {
		p.send(t, f)
	}
	require.NoError(t, p.client.Write(t.Context(), websocket.MessageBinary, []byte{1}))
	p.send(t, startFrame) // too late: the sixth bad frame has closed the stream

	ended := recvEnd(t, p)
	assert.Equal(t, "bad_frames_before_start", ended.Reason)
	assert.Equal(t, int(websocket.StatusPolicyViolation), ended.Code)
	ce := <-closed
	assert.Equal(t, websocket.StatusPolicyViolation, ce.Code)
	assert.Equal(t, "too many bad frames before the start event", ce.Reason)
	assert.Contains(t, p.logs.String(), "too many bad frames before the start event")
	assert.Equal(t, 6, p.ch.Skipped())
}

// TestFloodIsCountedAndLoggedAtABoundedRate: thousands of bad frames after
// the start are all counted; the log gets a line when they begin and then
// at most one every wsstream.SkipLogEvery, and the stream's end line
// carries the count.
func TestFloodIsCountedAndLoggedAtABoundedRate(t *testing.T) {
	p := newPair(t)
	p.started(t)
	const flood = 5000
	began := time.Now()
	go func() { // the channel reads while the peer writes
		for i := range flood {
			typ, frame := websocket.MessageText, []byte("not json")
			switch i % 3 {
			case 1:
				typ, frame = websocket.MessageBinary, []byte{0xff}
			case 2:
				frame = []byte(mediaFrame("@@@@"))
			}
			if p.client.Write(context.Background(), typ, frame) != nil {
				return
			}
		}
		_ = p.client.Write(context.Background(), websocket.MessageText, []byte(`{"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":"9"}}`))
	}()
	ev := p.recv(t)
	took := time.Since(began)
	assert.Equal(t, "9", ev.Key, "the stream goes on")
	assert.Equal(t, flood, p.ch.Skipped())

	lines := strings.Count(p.logs.String(), "skipped frames")
	bound := 1 + int(took/(5*time.Second))
	t.Logf("%d bad frames in %v: %d log lines", flood, took, lines)
	assert.Positive(t, lines)
	assert.LessOrEqual(t, lines, bound)

	closed := clientClose(t, p)
	require.NoError(t, p.ch.End(ports.EndCompleted))
	<-closed
	assert.Contains(t, p.logs.String(), "skipped=5000", "the end of the stream says how many were skipped")
	assert.Equal(t, flood, p.ch.Skipped(), "the count stays after the close")
}

func TestAFewBadFramesBeforeStartAreTolerated(t *testing.T) {
	p := newPair(t)
	p.send(t, `{"event":"connected","protocol":"Call","version":"1.0.0"}`)
	for range 5 {
		p.send(t, "not json")
	}
	p.send(t, startFrame)
	assert.Equal(t, ports.CallStarted, p.recv(t).Type, "connected is dropped, and not counted")
	assert.Equal(t, 5, p.ch.Skipped())
	for range 20 { // after the start, bad frames no longer end the stream
		p.send(t, "not json")
	}
	p.send(t, `{"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":"7"}}`)
	assert.Equal(t, "7", p.recv(t).Key)
}

func TestBadMediaPayloadIsSkipped(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4, 5})
	max := base64.StdEncoding.EncodeToString(make([]byte, 8000)) // a second of audio: the most accepted
	for name, payload := range map[string]string{
		"outside the alphabet":  "AB-_",
		"not whole quanta":      "AAAAA",
		"padding inside":        "AA==AAAA",
		"three padding":         "A===",
		"line feed":             `AAAA\nAAAA`,
		"empty":                 "",
		"over a second":         max + "AAAA",
		"url-safe alphabet":     "____",
		"not ASCII":             "AAA\u00e9",
		"padding alone":         "====",
		"padding after padding": "AA=A",
	} {
		t.Run(name, func(t *testing.T) {
			p := newPair(t)
			p.started(t)
			p.send(t, mediaFrame(payload))
			p.send(t, mediaFrame(good))
			ev := p.recv(t)
			assert.Equal(t, good, string(ev.Audio), "the bad frame is skipped, the good one arrives")
			assert.Equal(t, 1, p.ch.Skipped(), "and counted")
		})
	}
	t.Run("a second of audio", func(t *testing.T) {
		p := newPair(t)
		p.started(t)
		p.send(t, mediaFrame(max))
		assert.Equal(t, max, string(p.recv(t).Audio))
	})
}

// TestSkippedFrameLogIsBounded: what a skipped frame's log line quotes of
// the frame (an unknown event's name) is cut short.
func TestSkippedFrameLogIsBounded(t *testing.T) {
	p := newPair(t)
	p.started(t)
	long := strings.Repeat("E", 60_000)
	p.send(t, `{"event":"`+long+`","streamSid":"MZ1"}`)
	p.send(t, `{"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":"1"}}`)
	assert.Equal(t, "1", p.recv(t).Key)
	assert.Equal(t, 1, p.ch.Skipped())
	assert.Contains(t, p.logs.String(), `unknown event \"EEEE`)
	assert.Less(t, len(p.logs.String()), 2000, "the log does not carry the frame")
}

func TestClosedStreamErrorIsOneLine(t *testing.T) {
	p := newPair(t)
	p.started(t)
	closed := clientClose(t, p)
	require.NoError(t, p.ch.End(ports.EndCompleted))
	<-closed
	_, err := p.ch.Recv(t.Context())
	require.ErrorIs(t, err, ports.ErrClosed)
	var ended *ports.SessionEnded
	require.ErrorAs(t, err, &ended)
	assert.NotContains(t, err.Error(), "\n")
	err = p.ch.Play(t.Context(), []byte("AAAA"))
	require.ErrorIs(t, err, ports.ErrClosed)
	assert.NotContains(t, err.Error(), "\n")
}

// markName reads the next frame the channel sent, checks that it is a
// mark, and returns its name.
func (p *pair) markName(t *testing.T) string {
	t.Helper()
	m := p.readOutbound(t)
	require.Equal(t, "mark", m["event"], "frame %v", m)
	return m["mark"].(map[string]any)["name"].(string)
}

// echoMark sends the echo of the mark named name, as Twilio does.
func (p *pair) echoMark(t *testing.T, name string) {
	t.Helper()
	p.send(t, `{"event":"mark","sequenceNumber":"7","streamSid":"MZ1","mark":{"name":"`+name+`"}}`)
}

func TestMarkEchoesReportPlayback(t *testing.T) {
	p := newPair(t)
	p.started(t)
	ctx := t.Context()
	var names []string
	for _, n := range []int{160, 160, 80} { // 20, 20 and 10 ms
		require.NoError(t, p.ch.Play(ctx, []byte(base64.StdEncoding.EncodeToString(make([]byte, n)))))
		assert.Equal(t, "media", p.readOutbound(t)["event"])
		names = append(names, p.markName(t))
	}
	assert.Equal(t, []string{"m1", "m2", "m3"}, names)
	require.NoError(t, p.ch.Play(ctx, nil), "no audio: nothing to send")

	p.echoMark(t, "m1")
	assert.Equal(t, ports.CallEvent{Type: ports.CallPlayed, PlayedMs: 20}, p.recv(t))
	p.echoMark(t, "m2")
	assert.Equal(t, ports.CallEvent{Type: ports.CallPlayed, PlayedMs: 40}, p.recv(t))
	p.echoMark(t, "m2") // again
	p.echoMark(t, "m3")
	assert.Equal(t, ports.CallEvent{Type: ports.CallPlayed, PlayedMs: 50}, p.recv(t))
	assert.Equal(t, 1, p.ch.Skipped(), "an echo of a mark done already is skipped")
}

// The marks pending at a clear come back right after it; the last one
// takes the played position up to all the audio given to Play.
func TestClearedAudioCountsAsDone(t *testing.T) {
	p := newPair(t)
	p.started(t)
	ctx := t.Context()
	chunk := []byte(base64.StdEncoding.EncodeToString(make([]byte, 160)))
	for range 4 {
		require.NoError(t, p.ch.Play(ctx, chunk))
	}
	require.NoError(t, p.ch.Clear(ctx))
	var sent []string
	for range 9 {
		sent = append(sent, p.readOutbound(t)["event"].(string))
	}
	assert.Equal(t, []string{"media", "mark", "media", "mark", "media", "mark", "media", "mark", "clear"}, sent)

	p.echoMark(t, "m1") // played before the clear arrived
	assert.Equal(t, int64(20), p.recv(t).PlayedMs)
	for _, name := range []string{"m2", "m3", "m4"} { // flushed by the clear
		p.echoMark(t, name)
	}
	for _, want := range []int64{40, 60, 80} {
		assert.Equal(t, ports.CallEvent{Type: ports.CallPlayed, PlayedMs: want}, p.recv(t))
	}

	// Playback goes on from there.
	require.NoError(t, p.ch.Play(ctx, chunk))
	p.readOutbound(t)
	p.echoMark(t, p.markName(t))
	assert.Equal(t, int64(100), p.recv(t).PlayedMs)
}

func TestStartCarriesTheCall(t *testing.T) {
	p := newPair(t)
	p.send(t, `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1",`+
		`"customParameters":{"token":"t","from":"+15551230000","to":"+15559870000"}},"streamSid":"MZ1"}`)
	assert.Equal(t, ports.CallEvent{Type: ports.CallStarted, Call: ports.CallInfo{
		CallID: "CA1", From: "+15551230000", To: "+15559870000", Params: map[string]string{"token": "t"},
	}}, p.recv(t))
	assert.Equal(t, ports.Mulaw8k, p.ch.Format())
}

func TestStartsThatAreNotACallAreSkipped(t *testing.T) {
	p := newPair(t)
	for _, f := range []string{
		strings.Replace(startFrame, "audio/x-mulaw", "audio/l16", 1),              // not mu-law
		strings.Replace(startFrame, `"sampleRate":8000`, `"sampleRate":16000`, 1), // not 8 kHz
		strings.Replace(startFrame, `"callSid":"CA1",`, "", 1),
	} {
		p.send(t, f)
	}
	p.started(t)
	p.send(t, startFrame) // a second start
	p.send(t, `{"event":"dtmf","streamSid":"MZ1","dtmf":{"digit":"3"}}`)
	assert.Equal(t, "3", p.recv(t).Key)
	assert.Equal(t, 4, p.ch.Skipped())
}
