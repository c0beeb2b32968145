package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/twilio/signature"
	"github.com/convgateway/gateway/ports"
)

const streamToken = "stream-token-secret-0123456789"

func callForm() url.Values {
	return url.Values{
		"CallSid":    {"CA0123456789abcdef0123456789abcdef"},
		"AccountSid": {"AC0123456789abcdef0123456789abcdef"},
		"From":       {"+15551234567"},
		"To":         {"+15557654321"},
		"CallStatus": {"ringing"},
	}
}

func answerWith(a ports.CallAnswer, err error) func(context.Context, ports.IncomingCall) (ports.CallAnswer, error) {
	return func(context.Context, ports.IncomingCall) (ports.CallAnswer, error) { return a, err }
}

func TestIncomingCallConnectsStream(t *testing.T) {
	e := newEnv(t)
	e.calls.SetAnswer(answerWith(ports.CallAnswer{Token: streamToken}, nil))

	doc := readTwiML(t, e.post(t, "/incoming-call", callForm(), true))

	require.NotNil(t, doc.Connect, "want <Connect>")
	assert.Equal(t, "wss://gw.example.com/media-stream", doc.Connect.Stream.URL)
	params := map[string]string{}
	for _, p := range doc.Connect.Stream.Params {
		params[p.Name] = p.Value
	}
	assert.Equal(t, map[string]string{"token": streamToken, "from": "+15551234567", "to": "+15557654321"}, params,
		"the token and the call's numbers, for its start event")
	assert.Nil(t, doc.Reject)
	assert.Equal(t, []string{"Connect", "Say", "Hangup"}, doc.Verbs,
		"an apology follows <Connect> for when the gateway ends the stream")

	assert.Equal(t, []ports.IncomingCall{{
		CallID:     "CA0123456789abcdef0123456789abcdef",
		AccountSid: "AC0123456789abcdef0123456789abcdef",
		From:       "+15551234567",
		To:         "+15557654321",
	}}, e.calls.Incoming())

	logs := e.logs.String()
	assert.Contains(t, logs, `"call_sid":"CA0123456789abcdef0123456789abcdef"`, "request log names the call")
	assert.NotContains(t, logs, streamToken)
	assert.NotContains(t, logs, authToken)
}

func TestIncomingCallByGET(t *testing.T) {
	e := newEnv(t)
	e.calls.SetAnswer(answerWith(ports.CallAnswer{Token: streamToken}, nil))
	path := "/incoming-call?" + callForm().Encode()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("X-Twilio-Signature", signature.Sign(authToken, publicURL+path, nil))
	resp, err := e.ts.Client().Do(req)
	require.NoError(t, err)

	doc := readTwiML(t, resp)
	require.NotNil(t, doc.Connect)
	require.Len(t, e.calls.Incoming(), 1)
	assert.Equal(t, "+15551234567", e.calls.Incoming()[0].From)
}

func TestIncomingCallRefusesBadSignatures(t *testing.T) {
	form := callForm()
	tampered := callForm()
	tampered.Set("From", "+15550000000")
	tests := []struct {
		name string
		body string
		sig  string
	}{
		{name: "missing", body: form.Encode()},
		{name: "garbage", body: form.Encode(), sig: "bm90IGEgc2lnbmF0dXJl"},
		{name: "other token", body: form.Encode(), sig: signature.Sign("other-token", publicURL+"/incoming-call", form)},
		{name: "other path", body: form.Encode(), sig: signature.Sign(authToken, publicURL+"/webhook", form)},
		{name: "tampered form", body: tampered.Encode(), sig: signature.Sign(authToken, publicURL+"/incoming-call", form)},
		{name: "missing and malformed form", body: "From=%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.postSig(t, "/incoming-call", tt.body, tt.sig)
			body := readBody(t, resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.NotContains(t, body, "<Response")
			assert.Empty(t, e.calls.Incoming(), "Answer must not be called")
			assert.NotContains(t, e.logs.String(), authToken)
		})
	}
}

func TestIncomingCallRejected(t *testing.T) {
	e := newEnv(t)
	e.calls.SetAnswer(answerWith(ports.CallAnswer{Reject: true}, nil))

	doc := readTwiML(t, e.post(t, "/incoming-call", callForm(), true))

	assert.NotNil(t, doc.Reject, "want <Reject/>")
	assert.Nil(t, doc.Connect)
}

func TestIncomingCallFailureApologises(t *testing.T) {
	e := newEnv(t)
	e.calls.SetAnswer(answerWith(ports.CallAnswer{}, errors.New("token store: dial tcp: connection refused")))

	doc := readTwiML(t, e.post(t, "/incoming-call", callForm(), true))

	require.Len(t, doc.Say, 1)
	assert.NotEmpty(t, doc.Say[0])
	assert.NotContains(t, doc.Say[0], "refused", "no internal text reaches the caller")
	assert.NotNil(t, doc.Hangup)
	assert.Nil(t, doc.Connect)
	assert.Contains(t, e.logs.String(), "connection refused", "the failure is logged")
}

func TestIncomingCallWithoutCallSid(t *testing.T) {
	e := newEnv(t)
	form := callForm()
	form.Del("CallSid")

	resp := e.post(t, "/incoming-call", form, true)
	readBody(t, resp)

	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Empty(t, e.calls.Incoming())
}
