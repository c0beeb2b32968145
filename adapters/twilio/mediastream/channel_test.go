package mediastream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/twilio/mediastream"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair is a Channel on a loopback server and the raw client end of its
// WebSocket.
type pair struct {
	ch     *mediastream.Channel
	client *websocket.Conn
	url    string
	logs   *testlog.Buffer
}

// serve starts a loopback server whose handler wraps each accepted
// connection in a Channel and hands it over.
func serve(t testing.TB, logs io.Writer) (url string, channels <-chan *mediastream.Channel) {
	t.Helper()
	chans := make(chan *mediastream.Channel, 1)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, err := mediastream.Accept(w, r, log)
		if err != nil {
			return
		}
		chans <- ch
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), chans
}

func newPair(t *testing.T) *pair {
	t.Helper()
	var logs testlog.Buffer
	url, chans := serve(t, &logs)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	ch := <-chans
	t.Cleanup(func() {
		_ = client.CloseNow()
		_ = ch.Close("test_end", false)
	})
	return &pair{ch: ch, client: client, url: url, logs: &logs}
}

func (p *pair) send(t *testing.T, frame string) {
	t.Helper()
	require.NoError(t, p.client.Write(t.Context(), websocket.MessageText, []byte(frame)))
}

func (p *pair) recv(t *testing.T) ports.CallEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ev, err := p.ch.Recv(ctx)
	require.NoError(t, err)
	return ev
}

// readOutbound reads the next frame the channel sent, as a generic JSON
// object.
func (p *pair) readOutbound(t *testing.T) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, b, err := p.client.Read(ctx)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func samples(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	require.NoError(t, sc.Err())
	return lines
}

func TestDecodesTwilioSamples(t *testing.T) {
	p := newPair(t)
	for _, line := range samples(t, "twilio-media-streams-inbound.jsonl") {
		p.send(t, line)
	}
	const sid = "MZ00000000000000000000000000000000"
	silence := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160))

	assert.Equal(t, ports.CallEvent{Type: ports.CallConnected}, p.recv(t))

	start := p.recv(t)
	assert.Equal(t, ports.CallEvent{
		Type: ports.CallStart, Seq: 1, StreamSid: sid,
		CallSid: "CA00000000000000000000000000000000", AccountSid: "AC00000000000000000000000000000000",
		Params:   map[string]string{"token": "REPLACE_WITH_TOKEN"},
		Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1,
	}, start)

	for i, ts := range []int64{20, 40} {
		m := p.recv(t)
		assert.Equal(t, ports.CallMedia, m.Type)
		assert.Equal(t, int64(i+2), m.Seq)
		assert.Equal(t, ts, m.TimestampMs)
		assert.Equal(t, sid, m.StreamSid)
		assert.Equal(t, silence, string(m.Payload))
	}

	dtmf := p.recv(t)
	assert.Equal(t, ports.CallDTMF, dtmf.Type)
	assert.Equal(t, "1", dtmf.Digit)
	assert.Equal(t, int64(4), dtmf.Seq)

	mark := p.recv(t)
	assert.Equal(t, ports.CallMark, mark.Type)
	assert.Equal(t, "resp-1", mark.Mark)

	stop := p.recv(t)
	assert.Equal(t, ports.CallStop, stop.Type)
	assert.Equal(t, int64(6), stop.Seq)

	_, err := p.ch.Recv(t.Context())
	require.ErrorIs(t, err, ports.ErrClosed)
	var ended *ports.SessionEnded
	require.ErrorAs(t, err, &ended)
	assert.Equal(t, "caller_hangup", ended.Reason)
}

func TestOutboundMatchesTwilioSamples(t *testing.T) {
	p := newPair(t)
	lines := samples(t, "twilio-media-streams-inbound.jsonl")
	p.send(t, lines[1]) // start
	require.Equal(t, ports.CallStart, p.recv(t).Type)

	want := samples(t, "twilio-media-streams-outbound.jsonl")
	var wantMedia struct {
		Media struct{ Payload string } `json:"media"`
	}
	require.NoError(t, json.Unmarshal([]byte(want[0]), &wantMedia))

	ctx := t.Context()
	require.NoError(t, p.ch.SendAudio(ctx, []byte(wantMedia.Media.Payload)))
	require.NoError(t, p.ch.SendMark(ctx, "resp-1"))
	require.NoError(t, p.ch.Clear(ctx))

	for i, line := range want {
		var w map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &w))
		assert.Equal(t, w, p.readOutbound(t), "outbound frame %d", i)
	}
}

func TestSkipsBadFrames(t *testing.T) {
	p := newPair(t)
	p.started(t)
	for _, frame := range []string{
		`not json`,
		`{"event":"media"`,
		`[1,2,3]`,
		`{"event":"media","media":{"timestamp":"20"}}`,               // no payload
		`{"event":"media","media":{"timestamp":"x","payload":"AA"}}`, // bad number
		`{"event":"start","start":{"streamSid":"MZ1"}}`,              // no callSid
		`{"event":"transcription","streamSid":"MZ1"}`,                // unknown
		`{"event":"dtmf","dtmf":{}}`,
	} {
		p.send(t, frame)
	}
	require.NoError(t, p.client.Write(t.Context(), websocket.MessageBinary, []byte{1, 2, 3}))
	p.send(t, `{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"9","dtmf":{"track":"inbound_track","digit":"#"}}`)

	ev := p.recv(t)
	assert.Equal(t, ports.CallDTMF, ev.Type, "bad frames are skipped, the good one arrives")
	assert.Equal(t, "#", ev.Digit)
	assert.Equal(t, 9, p.ch.Skipped(), "every bad frame is counted")
	assert.Equal(t, 1, strings.Count(p.logs.String(), "skipped frames"), "a burst of bad frames is logged once")
}

func TestEscapedPayloadIsUnescaped(t *testing.T) {
	p := newPair(t)
	p.started(t)
	p.send(t, `{"event":"media","sequenceNumber":"2","media":{"timestamp":"20","payload":"AB\/CD\/=="},"streamSid":"MZ1"}`)
	assert.Equal(t, "AB/CD/==", string(p.recv(t).Payload))
}

func TestOversizedFrameClosesWith1009(t *testing.T) {
	p := newPair(t)
	big := `{"event":"media","media":{"payload":"` + strings.Repeat("A", mediastream.ReadLimit) + `"}}`
	_ = p.client.Write(t.Context(), websocket.MessageText, []byte(big))

	_, err := p.ch.Recv(t.Context())
	require.ErrorIs(t, err, ports.ErrClosed)
	var ended *ports.SessionEnded
	require.ErrorAs(t, err, &ended)
	assert.Equal(t, int(websocket.StatusMessageTooBig), ended.Code)

	_, _, err = p.client.Read(t.Context())
	assert.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(err))
	assert.Contains(t, p.logs.String(), "read limit")
}

func TestPeerCloseEndsStream(t *testing.T) {
	p := newPair(t)
	closed := make(chan error, 1)
	go func() { // the close handshake completes when the channel reads
		closed <- p.client.Close(websocket.StatusGoingAway, "bye")
	}()
	_, err := p.ch.Recv(t.Context())
	require.NoError(t, <-closed)
	require.ErrorIs(t, err, ports.ErrClosed)
	var ended *ports.SessionEnded
	require.ErrorAs(t, err, &ended)
	assert.Equal(t, "remote_closed", ended.Reason)
	assert.Equal(t, int(websocket.StatusGoingAway), ended.Code)
}

func TestSendBeforeStartFails(t *testing.T) {
	p := newPair(t)
	assert.ErrorIs(t, p.ch.SendAudio(t.Context(), []byte("AAAA")), ports.ErrInvalidInput)
}

func TestCloseReasonIsReported(t *testing.T) {
	p := newPair(t)
	read := make(chan error, 1)
	go func() {
		_, _, err := p.client.Read(t.Context())
		read <- err
	}()
	require.NoError(t, p.ch.Close("invalid_token", true))
	err := <-read
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.StatusPolicyViolation, ce.Code)
	assert.Equal(t, "invalid_token", ce.Reason)

	_, err = p.ch.Recv(t.Context())
	var ended *ports.SessionEnded
	require.ErrorAs(t, err, &ended)
	assert.Equal(t, "invalid_token", ended.Reason)
}

func TestConformance(t *testing.T) {
	porttest.TelephonyChannel(t, func(t *testing.T) porttest.TelephonyHarness {
		url, chans := serve(t, io.Discard)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		caller, err := mediasim.Dial(ctx, mediasim.Options{URL: url, Clock: mediasim.Faster(100)})
		require.NoError(t, err)
		ch := <-chans
		t.Cleanup(func() {
			_ = ch.Close("test_end", false)
			_ = caller.Close()
		})
		return porttest.TelephonyHarness{Channel: ch, Peer: caller}
	})
}

// BenchmarkSendMediaAndMark measures one assistant chunk to Twilio: a media
// frame and its mark, written to a real loopback connection.
func BenchmarkSendMediaAndMark(b *testing.B) {
	url, chans := serve(b, io.Discard)
	client, _, err := websocket.Dial(b.Context(), url, nil)
	require.NoError(b, err)
	ch := <-chans
	b.Cleanup(func() {
		_ = client.CloseNow()
		_ = ch.Close("bench_end", false)
	})
	go func() { // drain what the channel sends
		for {
			if _, _, err := client.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	lines := samples(b, "twilio-media-streams-inbound.jsonl")
	require.NoError(b, client.Write(b.Context(), websocket.MessageText, []byte(lines[1])))
	_, err = ch.Recv(b.Context())
	require.NoError(b, err)
	audio := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := ch.SendAudio(ctx, audio); err != nil {
			b.Fatal(err)
		}
		if err := ch.SendMark(ctx, "resp_1-item_1-42"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecvMedia measures one caller frame from a real loopback
// connection to Recv.
func BenchmarkRecvMedia(b *testing.B) {
	url, chans := serve(b, io.Discard)
	client, _, err := websocket.Dial(b.Context(), url, nil)
	require.NoError(b, err)
	ch := <-chans
	b.Cleanup(func() {
		_ = client.CloseNow()
		_ = ch.Close("bench_end", false)
	})
	lines := samples(b, "twilio-media-streams-inbound.jsonl")
	// Start with a context that cannot end: Recv then reads inline, as in
	// a call.
	ctx := context.Background()
	require.NoError(b, client.Write(ctx, websocket.MessageText, []byte(lines[1])))
	_, err = ch.Recv(ctx)
	require.NoError(b, err)
	frame := []byte(lines[2])
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
		if _, err := ch.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCloseWithUnreadEvents(t *testing.T) {
	p := newPair(t)
	p.started(t)
	for range 3 {
		p.send(t, `{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"1","dtmf":{"digit":"1"}}`)
	}
	read := make(chan error, 1)
	go func() { // the peer answers the close handshake
		for {
			if _, _, err := p.client.Read(context.Background()); err != nil {
				read <- err
				return
			}
		}
	}()
	require.NoError(t, p.ch.Close("done", false), "the reader holding an undelivered event does not block the handshake")
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(<-read))
	_, err := p.ch.Recv(t.Context())
	assert.ErrorIs(t, err, ports.ErrClosed)
}

// TestAcceptRefusesPlainRequest: a request that is not a WebSocket upgrade
// is answered by Accept (426) and gets an error, not a channel.
func TestAcceptRefusesPlainRequest(t *testing.T) {
	w := httptest.NewRecorder()
	ch, err := mediastream.Accept(w, httptest.NewRequest(http.MethodGet, "/media-stream", nil), slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Nil(t, ch)
	assert.Contains(t, err.Error(), "mediastream: accept")
	assert.Equal(t, http.StatusUpgradeRequired, w.Code)
}
