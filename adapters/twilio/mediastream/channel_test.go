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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
		_ = ch.End(ports.EndCompleted)
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
	silence := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160))

	// connected is dropped: the start comes first.
	assert.Equal(t, ports.CallEvent{Type: ports.CallStarted, Call: ports.CallInfo{
		CallID: "CA00000000000000000000000000000000",
		Params: map[string]string{"token": "REPLACE_WITH_TOKEN"},
	}}, p.recv(t))

	for _, ts := range []int64{20, 40} {
		assert.Equal(t, ports.CallEvent{Type: ports.CallAudio, MediaMs: ts, Audio: []byte(silence)}, p.recv(t))
	}
	assert.Equal(t, ports.CallEvent{Type: ports.CallKey, Key: "1"}, p.recv(t))

	// The sample's mark ("resp-1") is not one the channel sent: skipped.
	assert.Equal(t, ports.CallEvent{Type: ports.CallHungUp}, p.recv(t))
	assert.Equal(t, 1, p.ch.Skipped())

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
	require.Equal(t, ports.CallStarted, p.recv(t).Type)

	want := samples(t, "twilio-media-streams-outbound.jsonl")
	var wantMedia struct {
		Media struct{ Payload string } `json:"media"`
	}
	require.NoError(t, json.Unmarshal([]byte(want[0]), &wantMedia))

	ctx := t.Context()
	require.NoError(t, p.ch.Play(ctx, []byte(wantMedia.Media.Payload))) // media, then its mark
	require.NoError(t, p.ch.Clear(ctx))

	for i, line := range want {
		var w map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &w))
		if mark, ok := w["mark"].(map[string]any); ok {
			mark["name"] = "m1" // the channel names its marks
		}
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
		`{"event":"mark","streamSid":"MZ1","mark":{"name":"resp-1"}}`, // not the channel's
		`{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}`,     // never sent
		`{"event":"mark","streamSid":"MZ1","mark":{}}`,
	} {
		p.send(t, frame)
	}
	require.NoError(t, p.client.Write(t.Context(), websocket.MessageBinary, []byte{1, 2, 3}))
	p.send(t, `{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"9","dtmf":{"track":"inbound_track","digit":"#"}}`)

	assert.Equal(t, ports.CallEvent{Type: ports.CallKey, Key: "#"}, p.recv(t), "bad frames are skipped, the good one arrives")
	assert.Equal(t, 12, p.ch.Skipped(), "every bad frame is counted")
	assert.Equal(t, 1, strings.Count(p.logs.String(), "skipped frames"), "a burst of bad frames is logged once")
}

func TestEscapedPayloadIsUnescaped(t *testing.T) {
	p := newPair(t)
	p.started(t)
	p.send(t, `{"event":"media","sequenceNumber":"2","media":{"timestamp":"20","payload":"AB\/CD\/=="},"streamSid":"MZ1"}`)
	assert.Equal(t, "AB/CD/==", string(p.recv(t).Audio))
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
	assert.ErrorIs(t, p.ch.Play(t.Context(), []byte("AAAA")), ports.ErrInvalidInput)
	assert.ErrorIs(t, p.ch.Clear(t.Context()), ports.ErrInvalidInput)
}

func TestEndReasonIsReported(t *testing.T) {
	for reason, code := range map[ports.EndReason]websocket.StatusCode{
		ports.EndCompleted: websocket.StatusNormalClosure,
		ports.EndRefused:   websocket.StatusPolicyViolation,
		ports.EndFailed:    websocket.StatusNormalClosure,
	} {
		t.Run(reason.String(), func(t *testing.T) {
			p := newPair(t)
			read := make(chan error, 1)
			go func() {
				_, _, err := p.client.Read(t.Context())
				read <- err
			}()
			require.NoError(t, p.ch.End(reason))
			require.NoError(t, p.ch.End(ports.EndRefused), "a second End does nothing")
			err := <-read
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, code, ce.Code)
			assert.Equal(t, reason.String(), ce.Reason)

			_, err = p.ch.Recv(t.Context())
			var ended *ports.SessionEnded
			require.ErrorAs(t, err, &ended)
			assert.Equal(t, reason.String(), ended.Reason)
			assert.Equal(t, int(code), ended.Code)
		})
	}
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
			_ = ch.End(ports.EndCompleted)
			_ = caller.Close()
		})
		return porttest.TelephonyHarness{Channel: ch, Peer: caller}
	})
}

// BenchmarkPlay measures one assistant chunk to Twilio and its progress
// back, on a real loopback connection: Play writes a media frame and its
// mark, the client reads both and echoes the mark, and a Recv loop turns
// the echo into a CallPlayed event.
func BenchmarkPlay(b *testing.B) {
	url, chans := serve(b, io.Discard)
	client, _, err := websocket.Dial(b.Context(), url, nil)
	require.NoError(b, err)
	ch := <-chans
	var wg sync.WaitGroup
	b.Cleanup(func() {
		_ = client.CloseNow()
		_ = ch.End(ports.EndCompleted)
		wg.Wait()
	})
	lines := samples(b, "twilio-media-streams-inbound.jsonl")
	ctx := context.Background()
	require.NoError(b, client.Write(ctx, websocket.MessageText, []byte(lines[1])))
	_, err = ch.Recv(ctx)
	require.NoError(b, err)
	var played atomic.Int64
	wg.Go(func() { // the gateway's reader
		for {
			ev, err := ch.Recv(ctx)
			if err != nil {
				return
			}
			played.Store(ev.PlayedMs)
		}
	})
	wg.Go(func() { echoMarks(client) })
	audio := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := ch.Play(ctx, audio); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	for played.Load() < int64(n*20) { // every echo came back
		runtime.Gosched()
	}
}

// echoMarks reads what a channel sends, as Twilio would, and echoes each
// mark at once, until the connection ends. It reuses its buffers.
func echoMarks(client *websocket.Conn) {
	var (
		in   bytes.Buffer
		echo []byte
	)
	markPrefix, nameKey := []byte(`{"event":"mark"`), []byte(`"name":`)
	for {
		_, r, err := client.Reader(context.Background())
		if err != nil {
			return
		}
		in.Reset()
		if _, err := in.ReadFrom(r); err != nil {
			return
		}
		f := in.Bytes()
		if !bytes.HasPrefix(f, markPrefix) {
			continue
		}
		echo = append(echo[:0], `{"event":"mark","sequenceNumber":"9","streamSid":"MZ00000000000000000000000000000000","mark":{`...)
		echo = append(echo, f[bytes.Index(f, nameKey):]...)
		if client.Write(context.Background(), websocket.MessageText, echo) != nil {
			return
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
		_ = ch.End(ports.EndCompleted)
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
	require.NoError(t, p.ch.End(ports.EndCompleted), "the reader holding an undelivered event does not block the handshake")
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
