package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/ports"
)

// startFrames are Twilio's connected and start messages (as in
// shared/contracts/twilio-media-streams-inbound.jsonl) carrying token.
func startFrames(token string) []string {
	return []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC00000000000000000000000000000000",` +
			`"streamSid":"MZ00000000000000000000000000000000","callSid":"CA00000000000000000000000000000000",` +
			`"tracks":["inbound"],"customParameters":{"token":"` + token + `"},` +
			`"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},` +
			`"streamSid":"MZ00000000000000000000000000000000"}`,
	}
}

// dialStream opens the media stream as Twilio does, with sig as
// x-twilio-signature ("" for none). It returns the connection or the
// refused upgrade's response.
func dialStream(t *testing.T, baseURL, sig string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if sig != "" {
		h.Set("x-twilio-signature", sig)
	}
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/media-stream", &websocket.DialOptions{HTTPHeader: h})
}

// refusedUpgrade opens the media stream as dialStream does, expects the
// upgrade to be refused and returns the refusal's status code.
func refusedUpgrade(t *testing.T, baseURL, sig string) int {
	t.Helper()
	conn, resp, err := dialStream(t, baseURL, sig)
	require.Error(t, err)
	if conn != nil {
		conn.CloseNow()
	}
	require.NotNil(t, resp)
	return resp.StatusCode
}

var wssSig = signature.Sign(authToken, "wss://gw.example.com/media-stream", nil)

// firstStart reads events until the start event and returns it.
func firstStart(ctx context.Context, ch ports.TelephonyChannel) (ports.CallEvent, error) {
	for {
		ev, err := ch.Recv(ctx)
		if err != nil || ev.Type == ports.CallStarted {
			return ev, err
		}
	}
}

func TestMediaStreamServesCall(t *testing.T) {
	for name, tt := range map[string]struct {
		sig           string
		allowUnsigned bool
	}{
		"signed":                             {sig: wssSig},
		"signed, unsigned allowed":           {sig: wssSig, allowUnsigned: true},
		"unsigned with AllowUnsignedStreams": {allowUnsigned: true},
	} {
		t.Run(name, func(t *testing.T) {
			sig := tt.sig
			e := newEnv(t, func(d *httpapi.Deps) { d.AllowUnsignedStreams = tt.allowUnsigned })
			gotToken := make(chan string, 1)
			e.calls.SetServe(func(ctx context.Context, ch ports.TelephonyChannel) error {
				defer ch.End(ports.EndCompleted)
				ev, err := firstStart(ctx, ch)
				if err != nil {
					return err
				}
				gotToken <- ev.Call.Params["token"]
				return nil
			})

			conn, _, err := dialStream(t, e.url, sig)
			require.NoError(t, err)
			defer conn.CloseNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, f := range startFrames(streamToken) {
				require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(f)))
			}

			select {
			case tok := <-gotToken:
				assert.Equal(t, streamToken, tok)
			case <-ctx.Done():
				t.Fatal("the call was not served")
			}
			_, _, err = conn.Read(ctx)
			assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "the stream is closed when Serve ends: %v", err)
			require.NoError(t, e.calls.WaitServed(ctx, 1))
			// The handler returns just after Serve.
			require.Eventually(t, func() bool { return e.srv.ActiveCalls() == 0 }, 10*time.Second, time.Millisecond)
			assert.NotContains(t, e.logs.String(), streamToken)
		})
	}
}

// TestMediaStreamRefusesBadSignature: a wrongly signed upgrade is refused
// with 403, and so is an unsigned one (Twilio signs every upgrade) unless
// AllowUnsignedStreams says a proxy strips the header.
func TestMediaStreamRefusesBadSignature(t *testing.T) {
	for _, allowUnsigned := range []bool{false, true} {
		e := newEnv(t, func(d *httpapi.Deps) { d.AllowUnsignedStreams = allowUnsigned })
		var served atomic.Int32
		e.calls.SetServe(func(_ context.Context, ch ports.TelephonyChannel) error {
			served.Add(1)
			return ch.End(ports.EndFailed)
		})
		sigs := map[string]string{
			"garbage":       "bm90IGEgc2lnbmF0dXJl",
			"signed https":  signature.Sign(authToken, "https://gw.example.com/media-stream", nil),
			"other account": signature.Sign("other-token", "wss://gw.example.com/media-stream", nil),
		}
		if !allowUnsigned {
			sigs["unsigned"] = ""
		}
		for name, sig := range sigs {
			t.Run(fmt.Sprintf("%s, AllowUnsignedStreams %v", name, allowUnsigned), func(t *testing.T) {
				assert.Equal(t, http.StatusForbidden, refusedUpgrade(t, e.url, sig))
			})
		}
		assert.Zero(t, served.Load(), "no call is served")
		assert.Equal(t, 0, e.srv.ActiveCalls())
	}
}

// serving runs a server on a loopback listener with Serve, as the gateway
// does, so Shutdown (and the http.Server's settings) can be exercised.
// edit may change the dependencies first.
func serving(t *testing.T, edit ...func(*httpapi.Deps)) (*env, func(ctx context.Context) error) {
	t.Helper()
	e := newEnv(t, edit...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	e.url = "http://" + ln.Addr().String()
	return e, func(ctx context.Context) error {
		err := e.srv.Shutdown(ctx)
		require.NoError(t, <-served)
		return err
	}
}

func TestShutdownWaitsForLiveCall(t *testing.T) {
	e, shutdown := serving(t)
	hangup := make(chan struct{})
	var cancelled atomic.Bool
	e.calls.SetServe(func(ctx context.Context, ch ports.TelephonyChannel) error {
		defer ch.End(ports.EndCompleted)
		select {
		case <-hangup:
		case <-ctx.Done():
			cancelled.Store(true)
		}
		return nil
	})
	conn, _, err := dialStream(t, e.url, wssSig)
	require.NoError(t, err)
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closed := conn.CloseRead(ctx) // answer the server's close as Twilio does
	require.NoError(t, e.calls.WaitActive(ctx, 1))
	require.Equal(t, 1, e.srv.ActiveCalls())

	var hungUp atomic.Bool
	done := make(chan error, 1)
	go func() {
		err := shutdown(ctx)
		if !hungUp.Load() {
			err = errors.Join(err, errors.New("Shutdown returned while the call was live"))
		}
		done <- err
	}()

	hungUp.Store(true)
	close(hangup)
	require.NoError(t, <-done)
	assert.False(t, cancelled.Load(), "a call that ends before the deadline is not cancelled")
	assert.Equal(t, 0, e.srv.ActiveCalls())
	<-closed.Done()
}

func TestShutdownCancelsCallsAtDeadline(t *testing.T) {
	e, shutdown := serving(t)
	var cancelled atomic.Bool
	e.calls.SetServe(func(ctx context.Context, ch ports.TelephonyChannel) error {
		defer ch.End(ports.EndCompleted)
		<-ctx.Done()
		cancelled.Store(true)
		return nil
	})
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	var closed []context.Context
	for range 2 {
		conn, _, err := dialStream(t, e.url, wssSig)
		require.NoError(t, err)
		defer conn.CloseNow()
		closed = append(closed, conn.CloseRead(wait))
	}
	require.NoError(t, e.calls.WaitActive(wait, 2))

	// The drain deadline has passed.
	deadline, cancel := context.WithCancel(context.Background())
	cancel()
	err := shutdown(deadline)

	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, cancelled.Load(), "live calls are cancelled at the deadline")
	assert.Equal(t, 0, e.srv.ActiveCalls(), "Shutdown returns after the call handlers")
	assert.Equal(t, 0, e.calls.Active())
	for _, c := range closed {
		<-c.Done()
		assert.NoError(t, wait.Err(), "the stream is closed")
	}
}

func TestShutdownRefusesNewStreams(t *testing.T) {
	e := newEnv(t) // the httptest listener stays open after Shutdown
	require.NoError(t, e.srv.Shutdown(context.Background()))

	assert.Equal(t, http.StatusServiceUnavailable, refusedUpgrade(t, e.url, wssSig))
}

func TestShutdownLetsWebhooksFinish(t *testing.T) {
	e, shutdown := serving(t)
	form := messageForm("SM1", "hi")
	release := make(chan struct{})
	e.messages.SetHandle(func(context.Context, ports.InboundMessage) (ports.Reply, error) {
		<-release
		return ports.Reply{Messages: []string{"done"}}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resps := sendAsync(e, e.request(t, "/webhook", form.Encode(), signature.Sign(authToken, publicURL+"/webhook", form)))
	_, err := e.messages.WaitReceived(ctx, 1)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- shutdown(ctx) }()
	close(release)

	r := <-resps
	require.NoError(t, r.err)
	assert.Equal(t, []string{"done"}, readTwiML(t, r.resp).Messages)
	require.NoError(t, <-done)
}

func TestShutdownCancelsWebhooksAtDeadline(t *testing.T) {
	e, shutdown := serving(t)
	form := messageForm("SM1", "hi")
	handled := make(chan error, 1)
	e.messages.SetHandle(func(ctx context.Context, _ ports.InboundMessage) (ports.Reply, error) {
		<-ctx.Done()
		handled <- ctx.Err()
		return ports.Reply{}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resps := sendAsync(e, e.request(t, "/webhook", form.Encode(), signature.Sign(authToken, publicURL+"/webhook", form)))
	_, err := e.messages.WaitReceived(ctx, 1)
	require.NoError(t, err)

	deadline, expire := context.WithCancel(context.Background())
	expire()
	require.ErrorIs(t, shutdown(deadline), context.Canceled)
	select {
	case err := <-handled:
		assert.ErrorIs(t, err, context.Canceled, "the webhook's context ends at the deadline")
	case <-ctx.Done():
		t.Fatal("the webhook was not cancelled")
	}
	if r := <-resps; r.err == nil {
		r.resp.Body.Close()
	}
}

type result struct {
	resp *http.Response
	err  error
}

// sendAsync sends req from another goroutine; the result arrives on the
// channel.
func sendAsync(e *env, req *http.Request) <-chan result {
	out := make(chan result, 1)
	go func() {
		resp, err := e.ts.Client().Do(req)
		out <- result{resp, err}
	}()
	return out
}
