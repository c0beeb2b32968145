package e2e_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mediasim"
)

// The tests of this file play a hostile or broken peer against the whole
// gateway: what it may send before and after authenticating, and what it
// costs the gateway (log lines, descriptors, audio forwarded to OpenAI).

// logLines counts the gateway's log lines that contain every one of parts.
func logLines(e *callEnv, parts ...string) int {
	n := 0
	for _, line := range strings.Split(e.logs.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// rawStream opens the media stream of a as Twilio does (to the TwiML's URL,
// signed), as a bare WebSocket: the test writes whatever frames it likes.
func rawStream(e *callEnv, a mediasim.Answer) *websocket.Conn {
	e.tb.Helper()
	h := http.Header{}
	h.Set("X-Twilio-Signature", mediasim.StreamSignature(callAuthToken, a.StreamURL))
	conn, _, err := websocket.Dial(e.ctx, a.StreamURL, &websocket.DialOptions{HTTPHeader: h})
	require.NoError(e.tb, err)
	e.tb.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

// readClose reads conn until the gateway closes it and returns the close
// frame (code -1 when the connection broke without one).
func readClose(ctx context.Context, conn *websocket.Conn) <-chan websocket.CloseError {
	out := make(chan websocket.CloseError, 1)
	go func() {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) {
					ce = websocket.CloseError{Code: -1, Reason: err.Error()}
				}
				out <- ce
				return
			}
		}
	}()
	return out
}

// TestEdgeUnsignedStreamRefused: Twilio signs every Media Streams upgrade,
// so an upgrade without X-Twilio-Signature is refused with 403 before any
// frame is read; the same call's signed upgrade is served.
func TestEdgeUnsignedStreamRefused(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	sid, a := e.placeCall(callFrom)

	_, err := mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL})
	require.Error(t, err, "an unsigned upgrade is refused")
	assert.Contains(t, err.Error(), "403")
	e.logged(`"msg":"httpapi: twilio signature refused"`, `"path":"/media-stream"`)

	c := e.dial(a, mediasim.Faster(20))
	require.NoError(t, c.Start(e.ctx, callInfo(sid, a.Params)))
	s := e.session()
	require.NoError(t, c.HangUp(e.ctx))
	ended(e, s)
	assert.Equal(t, "caller_hangup", e.summary(sid)["end_reason"])
}

// TestEdgeUnsignedStreamAllowed: with STREAM_SIGNATURE_REQUIRED=false (a
// proxy strips the header) an unsigned upgrade goes on to the token check,
// a wrongly signed one is still refused, and the start says so once.
func TestEdgeUnsignedStreamAllowed(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.StreamSignatureRequired = false })
	e.logged(`"msg":"STREAM_SIGNATURE_REQUIRED=false`)
	sid, a := e.placeCall(callFrom)

	_, err := mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL, Signature: mediasim.StreamSignature("not-the-token", a.StreamURL)})
	require.Error(t, err, "a wrongly signed upgrade is refused")
	assert.Contains(t, err.Error(), "403")

	c, err := mediasim.Dial(e.ctx, mediasim.Options{URL: a.StreamURL, Clock: mediasim.Faster(20)})
	require.NoError(t, err, "an unsigned upgrade goes on to the token check")
	defer c.Close()
	require.NoError(t, c.Start(e.ctx, callInfo(sid, map[string]string{"token": "forged"})))
	assert.Equal(t, int(websocket.StatusPolicyViolation), closed(e, c), "a forged token is refused")
	e.logged(`"msg":"media stream refused"`, `"reason":"invalid_token"`)
}

// TestEdgeFloodBeforeStart: a stream that sends 200,000 one-byte frames
// instead of its start event is closed with 1008 after a handful of them;
// the gateway writes a few log lines, not one per frame, and counts the
// stream as refused for want of a start.
func TestEdgeFloodBeforeStart(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	_, a := e.placeCall(callFrom)
	before := logLines(e)
	conn := rawStream(e, a)
	closed := readClose(e.ctx, conn)

	sent := 0
	for ; sent < 200_000; sent++ {
		if err := conn.Write(e.ctx, websocket.MessageText, []byte{'x'}); err != nil {
			break // the gateway closed the stream
		}
	}
	var ce websocket.CloseError
	select {
	case ce = <-closed:
	case <-e.ctx.Done():
		t.Fatalf("the gateway did not close the stream after %d bad frames; %d log lines", sent, logLines(e)-before)
	}
	t.Logf("the gateway closed the stream after the client wrote %d frames: %d %q", sent, ce.Code, ce.Reason)
	lines := logLines(e) - before
	t.Logf("%d log lines for the stream", lines)
	assert.LessOrEqual(t, lines, 10, "a few log lines, not one per frame")
	assert.Equal(t, websocket.StatusPolicyViolation, ce.Code)
	assert.Contains(t, ce.Reason, "before the start event")
	e.logged(`"msg":"media stream ended before its start event"`)
	assert.Contains(t, e.metrics(), `gateway_media_streams_refused_total{reason="no_start"} 1`)
}

// TestEdgeFloodAfterStart: after a valid start, bad frames are skipped and
// counted; the gateway logs them at most once every few seconds, the call
// goes on, and its summary says how many were skipped.
func TestEdgeFloodAfterStart(t *testing.T) {
	// The flood carries no media, and on a busy machine takes longer than
	// the default STREAM_IDLE_TIMEOUT: the test is not about idle streams.
	e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.StreamIdleTimeout = callWait })
	callSid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})

	bad := [][]byte{
		[]byte("x"),
		[]byte(`{"event":"media"`),
		[]byte(`{"event":"transcription","streamSid":"MZ1"}`),
		[]byte(`{"event":"media","media":{"timestamp":"20","payload":"not base64!"}}`),
	}
	const flood = 100_000
	began := time.Now()
	for i := range flood {
		require.NoError(t, caller.Raw(e.ctx, bad[i%len(bad)]))
	}
	frame := []byte(base64.StdEncoding.EncodeToString(make([]byte, 160)))
	require.NoError(t, caller.Audio(e.ctx, 20, frame))
	e.until("the good frame at the model", func() bool { return sess.Frames() >= 1 })
	took := time.Since(began)
	require.NoError(t, caller.HangUp(e.ctx))

	s := e.summary(callSid)
	assert.Equal(t, "caller_hangup", s["end_reason"], "the call went on")
	assert.EqualValues(t, flood, s["frames_skipped"], "the summary counts the skipped frames")
	assert.EqualValues(t, 1, s["frames_in"])

	lines := logLines(e, `"msg":"skipped`)
	bound := 2 + int(took/(5*time.Second))
	t.Logf("%d frames skipped in %v: %d log lines (bound %d)", flood, took, lines, bound)
	assert.LessOrEqual(t, lines, bound, "at most one line every few seconds")
	assert.Positive(t, lines, "skipped frames are logged")
}

// TestEdgeBadMediaNotForwarded: caller media whose payload is not base64,
// or far more than a frame of audio, is not sent to OpenAI; the good frames
// around it are.
func TestEdgeBadMediaNotForwarded(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	callSid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})

	good := func(b byte) []byte {
		audio := make([]byte, 160)
		for i := range audio {
			audio[i] = b
		}
		return []byte(base64.StdEncoding.EncodeToString(audio))
	}
	require.NoError(t, caller.Audio(e.ctx, 20, good(0x11)))
	for _, payload := range []string{
		"not base64!",               // outside the alphabet
		"AAAAA",                     // not a whole number of quanta
		"AA==AAAA",                  // padding inside
		strings.Repeat("A", 12_000), // 9,000 bytes: over a second of audio
		base64.StdEncoding.EncodeToString([]byte{0, 0, 0}), // a good one among them
	} {
		require.NoError(t, caller.Raw(e.ctx, []byte(`{"event":"media","sequenceNumber":"3","media":{"track":"inbound",`+
			`"chunk":"2","timestamp":"40","payload":"`+payload+`"},"streamSid":"MZ1"}`)))
	}
	require.NoError(t, caller.Audio(e.ctx, 60, good(0x22)))
	e.until("3 frames at the model", func() bool { return sess.Frames() >= 3 })
	require.NoError(t, caller.HangUp(e.ctx))
	s := e.summary(callSid)

	got := sess.ReceivedAudio()
	require.Len(t, got, 3, "only the good frames reach OpenAI")
	assert.Equal(t, good(0x11), got[0])
	assert.Equal(t, "AAAA", string(got[1]))
	assert.Equal(t, good(0x22), got[2])
	assert.EqualValues(t, 4, s["frames_skipped"])
}

// TestEdgeLoggedErrorsAreOneLine: the error of a stream that ended, as the
// call summary logs it, is one line.
func TestEdgeLoggedErrorsAreOneLine(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	callSid, _, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
	require.NoError(t, sess.Hangup(e.ctx))

	s := e.summary(callSid)
	assert.Equal(t, "model_closed", s["end_reason"])
	text, _ := s["err"].(string)
	require.NotEmpty(t, text)
	assert.NotContains(t, text, "\n", "the logged error is one line")
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"err":`) {
			assert.NotContains(t, line, `\n`, "no logged error has a newline: %s", line)
		}
	}
}

// sharedKey is the secret of a Webhooks Rule's shared key in the tests.
const sharedKey = "e2e-webhooks-shared-key-secret"

// postSigned POSTs form to the gateway's path, signed as a Webhooks Rule
// signs with settings (its X-Twilio-Webhooks-Signature-Settings) and key,
// and returns the status.
func postSigned(t *testing.T, e *callEnv, path string, form url.Values, settings, algorithm, key string) int {
	t.Helper()
	sig, err := signature.SignWithKey(algorithm, key, e.base+path, form)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(signature.Header, sig)
	req.Header.Set(signature.SettingsHeader, settings)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestEdgeWebhooksRuleSignatures: with TWILIO_WEBHOOK_SHARED_KEY, requests
// signed under a Webhooks Rule (HMAC-SHA256 with the shared key) are
// served: the voice webhook, its media stream's upgrade and the messaging
// webhook. A wrong key or an unknown algorithm gets 403 and a log line
// that says why, never the key.
func TestEdgeWebhooksRuleSignatures(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, func(c *configs.Config) { c.TwilioWebhookSharedKey = sharedKey })
	const settings = "key=webhooks_sharedkey_e2e,algorithm=HMAC_SHA256"
	call := url.Values{"CallSid": {"CA00000000000000000000000000000077"}, "AccountSid": {"AC1"}, "From": {callFrom}, "To": {callTo}}
	msg := url.Values{"MessageSid": {"SM00000000000000000000000000000077"}, "AccountSid": {"AC1"}, "From": {"whatsapp:" + callFrom},
		"To": {"whatsapp:" + callTo}, "Body": {"Olá! a+b=c & d"}, "NumMedia": {"0"}}

	assert.Equal(t, http.StatusOK, postSigned(t, e, "/incoming-call", call, settings, signature.AlgorithmSHA256, sharedKey))
	assert.Equal(t, http.StatusOK, postSigned(t, e, "/webhook", msg, settings, signature.AlgorithmSHA256, sharedKey))
	assert.Equal(t, http.StatusOK, postSigned(t, e, "/webhook", msg, "key=webhooks_sharedkey_e2e", signature.AlgorithmSHA1, sharedKey),
		"a header without an algorithm means HMAC-SHA1")

	// The stream of the call, its upgrade signed with the shared key.
	_, a := e.placeCall(callFrom)
	sig, err := signature.SignWithKey(signature.AlgorithmSHA256, sharedKey, a.StreamURL, nil)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(signature.Header, sig)
	h.Set(signature.SettingsHeader, settings)
	conn, _, err := websocket.Dial(e.ctx, a.StreamURL, &websocket.DialOptions{HTTPHeader: h})
	require.NoError(t, err, "the upgrade signed with the shared key is accepted")
	_ = conn.CloseNow()

	assert.Equal(t, http.StatusForbidden, postSigned(t, e, "/webhook", msg, settings, signature.AlgorithmSHA256, "not-the-shared-key"))
	assert.Equal(t, http.StatusForbidden, postSigned(t, e, "/webhook", msg, settings, signature.AlgorithmSHA256, callAuthToken),
		"the auth token does not sign for a Webhooks Rule")
	assert.Equal(t, http.StatusForbidden, postSigned(t, e, "/webhook", msg, "key=k,algorithm=HMAC_MD5", signature.AlgorithmSHA256, sharedKey))
	e.logged(`"msg":"httpapi: twilio signature refused"`, `unsupported algorithm`, `HMAC_MD5`)
	assert.NotContains(t, e.logs.String(), sharedKey)
}

// TestEdgeWebhooksRuleWithoutKey: without TWILIO_WEBHOOK_SHARED_KEY a
// request signed under a Webhooks Rule gets 403, and the log names the
// setting to set.
func TestEdgeWebhooksRuleWithoutKey(t *testing.T) {
	e := newCallEnv(t, realtimeBackend, simOptions{}, nil)
	call := url.Values{"CallSid": {"CA00000000000000000000000000000078"}, "From": {callFrom}, "To": {callTo}}
	assert.Equal(t, http.StatusForbidden,
		postSigned(t, e, "/incoming-call", call, "key=k,algorithm=HMAC_SHA256", signature.AlgorithmSHA256, sharedKey))
	e.logged(`"msg":"httpapi: twilio signature refused"`, `TWILIO_WEBHOOK_SHARED_KEY`)
	assert.NotContains(t, e.logs.String(), sharedKey)
}
