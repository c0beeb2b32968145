package httpapi_test

import (
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/adapters/twilio/mediastream"
	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/testlog"
)

const (
	authToken = "auth-token-never-logged-42"
	publicURL = "https://gw.example.com"
)

type env struct {
	srv      *httpapi.Server
	ts       *httptest.Server
	url      string // where requests go: ts.URL, or the listener Serve runs on
	calls    *fake.Calls
	messages *fake.Messages
	logs     *testlog.Buffer
}

// acceptStream is the media-stream adapter's Accept, as app/wire gives it.
func acceptStream(w http.ResponseWriter, r *http.Request, log *slog.Logger) (ports.TelephonyChannel, error) {
	ch, err := mediastream.Accept(w, r, log)
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// newEnv starts the server's handler on a loopback httptest server with
// fake use cases. edit may change the dependencies first.
func newEnv(t *testing.T, edit ...func(*httpapi.Deps)) *env {
	t.Helper()
	e := &env{calls: fake.NewCalls(), messages: fake.NewMessages(), logs: &testlog.Buffer{}}
	d := httpapi.Deps{
		Logger:       slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Calls:        e.calls,
		Messages:     e.messages,
		Verifier:     signature.New(authToken, publicURL),
		AcceptStream: acceptStream,
	}
	for _, f := range edit {
		f(&d)
	}
	e.srv = httpapi.New(d)
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	e.url = e.ts.URL
	return e
}

// post sends form to path, signed as Twilio signs it when sign is set.
func (e *env) post(t *testing.T, path string, form url.Values, sign bool, header ...string) *http.Response {
	t.Helper()
	sig := ""
	if sign {
		sig = signature.Sign(authToken, publicURL+path, form)
	}
	return e.postSig(t, path, form.Encode(), sig, header...)
}

// postSig sends body to path with the signature sig ("" for none) and
// extra header name/value pairs.
func (e *env) postSig(t *testing.T, path, body, sig string, header ...string) *http.Response {
	t.Helper()
	resp, err := e.ts.Client().Do(e.request(t, path, body, sig, header...))
	require.NoError(t, err)
	return resp
}

// request builds a form POST of body to path with the signature sig (""
// for none) and extra header name/value pairs.
func (e *env) request(t *testing.T, path, body, sig string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// twimlDoc is a parsed TwiML <Response> (parsed, because twilio-go orders
// attributes randomly).
type twimlDoc struct {
	XMLName xml.Name  `xml:"Response"`
	Reject  *struct{} `xml:"Reject"`
	Hangup  *struct{} `xml:"Hangup"`
	Say     []string  `xml:"Say"`
	Connect *struct {
		Stream struct {
			URL    string `xml:"url,attr"`
			Params []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"Parameter"`
		} `xml:"Stream"`
	} `xml:"Connect"`
	Messages []string `xml:"Message"`
	// Verbs are the names of the verbs, in document order.
	Verbs []string `xml:"-"`
}

// readTwiML checks that resp is 200 TwiML and parses it.
func readTwiML(t *testing.T, resp *http.Response) twimlDoc {
	t.Helper()
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml"), resp.Header.Get("Content-Type"))
	var doc twimlDoc
	require.NoError(t, xml.Unmarshal([]byte(body), &doc), body)
	a, err := mediasim.ParseAnswer([]byte(body)) // the verbs in document order
	require.NoError(t, err)
	doc.Verbs = a.Verbs
	return doc
}
