package e2e_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// hardeningSid is a realistic Twilio call sid: "CA" and 32 hex digits.
func hardeningSid(n int) string { return fmt.Sprintf("CA%032x", 0xc0ffee000+n) }

// quiet is 20 ms of caller silence as a media payload.
var quiet = []byte(base64.StdEncoding.EncodeToString(mulaw.Quiet(20)))

// hungServer is an "OpenAI" that accepts TCP connections and never answers
// the WebSocket upgrade on them. It counts the connections it accepted and
// those the gateway released (closed).
type hungServer struct {
	ln       net.Listener
	accepted atomic.Int32
	released atomic.Int32
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newHungServer(tb testing.TB) *hungServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	h := &hungServer{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				_, _ = io.Copy(io.Discard, c) // holds it until the gateway closes it
				h.released.Add(1)
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

// url is the hung server's URL for backend b.
func (h *hungServer) url(b speechBackend) string { return "ws://" + h.ln.Addr().String() + b.path }

// TestCallOpenAIHandshakeHangs: an OpenAI endpoint that accepts TCP and
// never answers the upgrade. Whichever the speech model and whether the
// session was pre-warmed or not, the caller's stream is closed normally
// (1000, so that Twilio plays the apology after <Connect>)
// OPENAI_OPEN_TIMEOUT after its start, far before the token's life, and
// every connection the gateway made to the endpoint is released.
func TestCallOpenAIHandshakeHangs(t *testing.T) {
	for _, b := range speechBackends {
		for _, prewarm := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prewarm=%v", b.name, prewarm), func(t *testing.T) {
				hung := newHungServer(t)
				e := newCallEnv(t, b, simOptions{}, func(c *configs.Config) {
					b.point(c, hung.url(b))
					c.OpenAIOpenTimeout = 300 * time.Millisecond
					c.Prewarm = prewarm
				})
				sid, a := e.placeCall(callFrom)
				if prewarm {
					e.until("the pre-warm's connection", func() bool { return hung.accepted.Load() >= 1 })
				}
				caller := e.dial(a, nil)
				start := time.Now()
				require.NoError(t, caller.Start(e.ctx, callInfo(sid, a.Params)))
				assert.Equal(t, int(websocket.StatusNormalClosure), closed(e, caller), "a normal close: Twilio goes on to the apology")
				took := time.Since(start)
				t.Logf("stream closed %v after its start (token life %v)", took, e.cfg.WSTokenTTL)
				assert.Less(t, took, e.cfg.WSTokenTTL/2, "closed long before the token's life")
				e.logged(`"msg":"media stream refused"`, `"reason":"model_unavailable"`, `"call_id":"`+sid+`"`)
				e.until("every connection to the hung endpoint released", func() bool {
					// A dial the gateway gave up on (its deadline came while
					// it connected) that completes anyway is kept by net/http
					// as an idle connection of the default transport, not as a
					// handshake in progress: those are closed here.
					http.DefaultTransport.(*http.Transport).CloseIdleConnections()
					return hung.released.Load() == hung.accepted.Load()
				})
				assert.Positive(t, hung.accepted.Load())
				assert.Empty(t, e.model.sessions(), "the simulator was never reached")
			})
		}
	}
}

// TestCallIdleStreamEnds: a caller that starts its stream and then sends
// nothing, its socket open, is ended after STREAM_IDLE_TIMEOUT: the stream
// is closed, and so is the Realtime session.
func TestCallIdleStreamEnds(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.StreamIdleTimeout = 500 * time.Millisecond })
	callSid, caller, sess := e.callWith(mediasim.Options{})
	// Silence on the wire: not even Twilio's silent frames.
	assert.Equal(t, int(websocket.StatusNormalClosure), closed(e, caller))
	ended(e, sess)
	s := e.summary(callSid)
	assert.Equal(t, "stream_idle", s["end_reason"])
	assert.EqualValues(t, 0, s["frames_in"])
}

// stallConn is a client connection that stops reading once stalled, as a
// peer that no longer reads its socket: the gateway's writes then fill the
// connection's buffers and block.
type stallConn struct {
	net.Conn
	stalled atomic.Bool
	closed  chan struct{}
	once    sync.Once
}

func (c *stallConn) Read(b []byte) (int, error) {
	if c.stalled.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Read(b)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestCallStalledCallerEnds: a caller that keeps sending media but stopped
// reading its socket. The assistant's audio fills the connection and the
// gateway's write blocks: the call ends ("stream_stalled") in bounded
// time, with its Realtime session. (Realtime only: with GPT-Live the
// gateway hands the caller no more than a small lead ahead of the marks,
// which a caller that no longer reads never sends, so its writes never
// fill the connection.)
func TestCallStalledCallerEnds(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.StreamIdleTimeout = time.Second })
	var conn atomic.Pointer[stallConn]
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
			sc := &stallConn{Conn: c, closed: make(chan struct{})}
			conn.Store(sc)
			return sc, nil
		},
	}}
	defer client.CloseIdleConnections()

	sid, a := e.placeCall(callFrom)
	caller := e.dialWith(a, mediasim.Options{HTTPClient: client, NoRecord: true})
	require.NoError(t, caller.Start(e.ctx, callInfo(sid, a.Params)))
	sess := e.session().(rtSession)
	conn.Load().stalled.Store(true)

	var wg sync.WaitGroup
	defer wg.Wait()
	// The caller goes on sending media, so the stream is not idle.
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-sess.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			if caller.Audio(e.ctx, int64(20*i), quiet) != nil {
				return
			}
		}
	})
	// The assistant talks, more than the connection can hold.
	wg.Go(func() {
		second, _ := chunks(50, 1000)
		for i := 0; ; i++ {
			if sess.SayAs(e.ctx, fmt.Sprintf("resp_%d", i), fmt.Sprintf("item_%d", i), "Blah.", second...) != nil {
				return
			}
		}
	})
	took := ended(e, sess)
	t.Logf("Realtime session closed %v after the caller stopped reading", took)
	s := e.summary(sid)
	assert.Equal(t, "stream_stalled", s["end_reason"])
}

// TestCallEventFloodIsBounded: a connected call floods the gateway with
// 1,500 frames of about 60 KB: key presses that are not one key, marks
// that are not the gateway's, and echoes of marks it never sent; and with
// 500 key presses while the model says nothing. Nothing of the junk is
// kept or logged: the marks are skipped by the stream and the key presses
// by the call, and counted; the key presses waiting for the model's next
// event stay bounded (what does not fit is dropped and counted), and the
// call's summary line stays small.
func TestCallEventFloodIsBounded(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	callSid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
	junk := strings.Repeat("7", 60<<10)
	pad := strings.Repeat(" ", 60<<10) // whitespace keeps the frame large, the name short
	const each = 500
	for i := range each {
		require.NoError(t, caller.Audio(e.ctx, int64(20*(i+1)), quiet)) // Twilio's frames go on
		require.NoError(t, caller.Key(e.ctx, junk))
		require.NoError(t, caller.Key(e.ctx, "1"))
		require.NoError(t, caller.Raw(e.ctx, []byte(`{"event":"mark","streamSid":"MZ`+callSid[2:]+`","mark":{"name":"`+junk+`"}}`)))
		name := []string{"m7", "m9"}[i%2] // our form, never sent, never consecutive
		require.NoError(t, caller.Raw(e.ctx, []byte(`{"event":"mark","streamSid":"MZ`+callSid[2:]+`","mark":{"name":"`+name+`"}}`+pad)))
	}
	require.NoError(t, caller.HangUp(e.ctx))
	ended(e, sess)

	s := e.summary(callSid)
	logs := e.logs.String()
	var line string
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, `"msg":"call ended"`) {
			line = l
		}
	}
	t.Logf("summary line: %d bytes; whole log: %d bytes", len(line), len(logs))
	assert.Less(t, len(line), 4<<10, "the summary line is small")
	assert.Less(t, len(logs), 256<<10, "the whole log of the call is small")
	assert.NotContains(t, logs, junk[:64], "the junk is neither kept nor logged")
	assert.Equal(t, "caller_hangup", s["end_reason"])
	assert.EqualValues(t, each, s["frames_in"])
	assert.EqualValues(t, 2*each, s["frames_skipped"], "the marks were skipped by the stream")
	assert.EqualValues(t, each, s["caller_events_skipped"], "the junk key presses were skipped by the call")
	dropped := s["caller_events_dropped"].(float64)
	assert.Positive(t, dropped, "key presses beyond the queue's bound were dropped")
	assert.EqualValues(t, each, s["digits_count"].(float64)+dropped, "the other key presses were applied")
	assert.LessOrEqual(t, strings.Count(logs, `"msg":"caller pressed a key"`), 64, "key presses are logged up to a bound")
}

// TestCallRepeatedWebhook: the same signed /incoming-call (same CallSid)
// sent 20 times, as a replay would, opens one model session. Each answer's
// token replaces the one before: the earlier tokens are refused (1008),
// the last connects, to the pre-warmed session.
func TestCallRepeatedWebhook(t *testing.T) {
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			e := newCallEnv(t, b, simOptions{}, nil)
			sid := hardeningSid(20)
			var answers []mediasim.Answer
			for range 20 {
				a, err := mediasim.PlaceCall(e.ctx, mediasim.CallRequest{
					URL: e.base + "/incoming-call", AuthToken: callAuthToken,
					CallSid: sid, AccountSid: "AC00000000000000000000000000000001", From: callFrom, To: callTo,
				})
				require.NoError(t, err)
				answers = append(answers, a)
			}
			prewarmed := e.session()

			for _, i := range []int{0, 10, 18} {
				old := e.dial(answers[i], nil)
				require.NoError(t, old.Start(e.ctx, callInfo(sid, answers[i].Params)))
				assert.Equal(t, int(websocket.StatusPolicyViolation), closed(e, old), "the token of answer %d was replaced", i)
			}
			caller := e.dial(answers[19], nil)
			require.NoError(t, caller.Start(e.ctx, callInfo(sid, answers[19].Params)))
			require.NoError(t, caller.Audio(e.ctx, 20, quiet))
			e.until("the caller's audio at the pre-warmed session", func() bool { return prewarmed.Frames() == 1 })
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, prewarmed)
			s := e.summary(sid)
			assert.Equal(t, true, s["prewarmed"])
			assert.Len(t, e.model.sessions(), 1, "one model session for 20 answers")
			assert.Equal(t, 19, strings.Count(e.logs.String(), `"prewarm":"reused"`))
		})
	}
}

// TestCallStreamClosedBeforeStart: a media stream that closes before its
// start event ends quietly: no token is looked up, nothing is logged as
// refused, and it is counted as a no_start refusal.
func TestCallStreamClosedBeforeStart(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	_, a := e.placeCall(callFrom)
	caller := e.dial(a, nil)
	require.NoError(t, caller.Raw(e.ctx, []byte(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)))
	require.NoError(t, caller.Close())
	e.logged(`"level":"INFO"`, `"msg":"media stream ended before its start event"`)
	body := e.metricsShowing(`gateway_media_streams_refused_total{reason="no_start"} 1`)
	assert.NotContains(t, body, `reason="invalid_token"`)
	assert.NotContains(t, e.logs.String(), "media stream refused")
}

// TestCallDigitsInTheLog: the keys a caller presses are not logged (a PIN
// or a card number), only their number, unless LOG_DIGITS is set.
func TestCallDigitsInTheLog(t *testing.T) {
	for _, show := range []bool{false, true} {
		t.Run(fmt.Sprintf("LOG_DIGITS=%v", show), func(t *testing.T) {
			e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.LogDigits = show })
			callSid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
			for _, d := range []string{"4", "9", "1", "7", "#"} {
				require.NoError(t, caller.Key(e.ctx, d))
			}
			e.logged(`"msg":"caller pressed a key"`, `"keys_pressed":5`, `"call_id":"`+callSid+`"`)
			require.NoError(t, caller.HangUp(e.ctx))
			ended(e, sess)
			s := e.summary(callSid)
			assert.EqualValues(t, 5, s["digits_count"])
			logs := e.logs.String()
			if show {
				assert.Equal(t, "4917#", s["digits"])
				assert.Contains(t, logs, `"digit":"7"`)
				return
			}
			assert.NotContains(t, s, "digits")
			assert.NotContains(t, logs, `"digit"`)
			assert.NotContains(t, logs, "4917#", "the keys, in order") // "4917" alone may be in a timestamp
		})
	}
}

// TestMultiRepeatedWebhookOnOtherInstance: the voice webhook reaches A,
// and its repeat (a Twilio retry, or a replay) reaches B. B sees in Redis
// that the call was answered and does not pre-warm a second session; A's
// token, replaced by B's, is refused (on B: presented to A, it would also
// make A drop its pre-warm, a token of it being refused). The stream, with B's token,
// connects wherever it lands: on A, to A's pre-warmed session; on B, to a
// session B opens then (A's pre-warm is discarded when the token's life
// ends).
func TestMultiRepeatedWebhookOnOtherInstance(t *testing.T) {
	for _, landsOn := range []string{"A", "B"} {
		t.Run("stream lands on "+landsOn, func(t *testing.T) {
			m := newMultiEnv(t, 2, func(c *configs.Config) { c.WSTokenTTL = 5 * time.Second })
			a, b := m.gws[0], m.gws[1]
			sid, first := m.placeCall(a, 7)
			m.until("A's pre-warmed session", func() bool { return len(a.rt.Sessions()) == 1 })
			_, second := m.placeCall(b, 7)
			m.logged(b, `"msg":"call answered"`, `"call_id":"`+sid+`"`, `"repeat":true`, `"prewarm":"skipped: answered before"`)
			assert.NotEqual(t, first.Params["token"], second.Params["token"])

			stale := m.dial(b, first)
			require.NoError(t, stale.Start(m.ctx, callInfo(sid, first.Params)))
			assert.Equal(t, int(websocket.StatusPolicyViolation), m.closedWith(stale), "A's token was replaced")

			g := a
			if landsOn == "B" {
				g = b
			}
			caller := m.dial(g, second)
			var sess *realtimesim.Session
			if landsOn == "A" {
				require.NoError(t, caller.Start(m.ctx, callInfo(sid, second.Params)))
				sess = a.rt.Sessions()[0]
			} else {
				sess = m.connect(b, caller, sid, second)
			}
			require.NoError(t, caller.Audio(m.ctx, 20, multiQuiet))
			m.until("the caller's audio at the model", func() bool { return sess.Frames() == 1 })
			require.NoError(t, caller.HangUp(m.ctx))
			m.logged(g, `"msg":"call ended"`, `"call_id":"`+sid+`"`, `"end_reason":"caller_hangup"`,
				fmt.Sprintf(`"prewarmed":%v`, landsOn == "A"))
			assert.Len(t, a.rt.Sessions(), 1, "A pre-warmed once")
			if landsOn == "A" {
				assert.Empty(t, b.rt.Sessions(), "B opened nothing")
				return
			}
			assert.Len(t, b.rt.Sessions(), 1, "B opened the call's session when its stream came")
			select {
			case <-a.rt.Sessions()[0].Done():
			case <-m.ctx.Done():
				t.Fatal("A's pre-warmed session outlived the call's token")
			}
		})
	}
}
