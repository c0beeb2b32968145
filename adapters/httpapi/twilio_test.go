package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/ports"
)

// stubVerifier accepts or refuses every request as told, whatever its
// signature says.
type stubVerifier struct {
	signed bool
	err    error // of ValidateForm and ValidateUpgrade
}

func (v stubVerifier) Signed(*http.Request) bool { return v.signed }

func (v stubVerifier) ValidateForm(*http.Request, url.Values, []byte) error { return v.err }

func (v stubVerifier) ValidateUpgrade(*http.Request) error { return v.err }

func (v stubVerifier) WebSocketURL(_ *http.Request, path string) string {
	return "wss://verifier.example" + path
}

// TestVerifierDecides: the server serves what the Verifier accepts and
// answers 403 to what it refuses, whatever the reason; the reason is
// logged, never sent.
func TestVerifierDecides(t *testing.T) {
	const reason = "refused for a reason only the log may see"
	refusing := func(d *httpapi.Deps) { d.Verifier = stubVerifier{signed: true, err: errors.New(reason)} }
	for _, path := range []string{"/incoming-call", "/webhook"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t, refusing)
			resp := e.post(t, path, messageForm("SM1", "hi"), false)
			body := readBody(t, resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.JSONEq(t, `{"error":"Forbidden"}`, body)
			assert.Contains(t, e.logs.String(), reason)
			assert.Empty(t, e.calls.Incoming())
			assert.Empty(t, e.messages.Received())
		})
	}
	t.Run("/media-stream", func(t *testing.T) {
		e := newEnv(t, refusing, func(d *httpapi.Deps) { d.AllowUnsignedStreams = true })
		assert.Equal(t, http.StatusForbidden, refusedUpgrade(t, e.url, ""), "a signed upgrade the Verifier refuses")
		assert.Contains(t, e.logs.String(), reason)
	})
	t.Run("accepted", func(t *testing.T) {
		e := newEnv(t, func(d *httpapi.Deps) { d.Verifier = stubVerifier{signed: true} })
		e.calls.SetAnswer(answerWith(ports.CallAnswer{Token: streamToken}, nil))
		doc := readTwiML(t, e.post(t, "/incoming-call", callForm(), false))
		require.NotNil(t, doc.Connect)
		assert.Equal(t, "wss://verifier.example/media-stream", doc.Connect.Stream.URL, "the stream URL is the Verifier's")
	})
}

// TestAcceptStreamFailure: when AcceptStream refuses the upgrade, its
// answer stands, no call is served and the server tracks none.
func TestAcceptStreamFailure(t *testing.T) {
	var accepts atomic.Int32
	e := newEnv(t, func(d *httpapi.Deps) {
		d.AcceptStream = func(w http.ResponseWriter, _ *http.Request, _ *slog.Logger) (ports.TelephonyChannel, error) {
			accepts.Add(1)
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return nil, errors.New("upgrade refused")
		}
	})
	assert.Equal(t, http.StatusBadRequest, refusedUpgrade(t, e.url, wssSig))
	assert.Equal(t, int32(1), accepts.Load())
	assert.Zero(t, e.calls.Active())
	assert.Zero(t, e.srv.ActiveCalls())
	assert.Contains(t, e.logs.String(), "upgrade refused")
}

// TestAcceptStreamChannelIsClosed: the channel AcceptStream made is
// closed once the call is served, even when Serve left it open.
func TestAcceptStreamChannelIsClosed(t *testing.T) {
	ch, peer := fake.NewTelephony()
	e := newEnv(t, func(d *httpapi.Deps) {
		d.AcceptStream = func(http.ResponseWriter, *http.Request, *slog.Logger) (ports.TelephonyChannel, error) {
			return ch, nil
		}
	})
	e.calls.SetServe(func(context.Context, ports.TelephonyChannel) error { return nil })
	req, err := http.NewRequest(http.MethodGet, e.url+"/media-stream", nil)
	require.NoError(t, err)
	req.Header.Set("X-Twilio-Signature", wssSig)
	resp, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	readBody(t, resp)
	ended, _ := peer.Ended()
	assert.True(t, ended, "the channel is released after Serve")
}

func TestNewRequiresVerifierAndAcceptStream(t *testing.T) {
	d := httpapi.Deps{
		Logger: slog.New(slog.DiscardHandler), Calls: fake.NewCalls(), Messages: fake.NewMessages(),
		Verifier: stubVerifier{}, AcceptStream: acceptStream,
	}
	assert.NotPanics(t, func() { httpapi.New(d) })
	noVerifier, noAccept := d, d
	noVerifier.Verifier, noAccept.AcceptStream = nil, nil
	assert.Panics(t, func() { httpapi.New(noVerifier) })
	assert.Panics(t, func() { httpapi.New(noAccept) })
}
