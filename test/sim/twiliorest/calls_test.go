package twiliorest_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/test/sim/twiliorest"
)

const callSid = "CA0123456789abcdef0123456789abcdef"

const dialTwiml = `<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="+15550001111"><Number>+15552223333</Number><Sip> sip:agent@pbx.example.com </Sip></Dial></Response>`

func updateCall(t *testing.T, ctx context.Context, sim *twiliorest.Server, user, pass, sid string, form url.Values) (reply, error) {
	t.Helper()
	return postForm(t, ctx, sim.URL()+"/2010-04-01/Accounts/"+sim.AccountSID()+"/Calls/"+sid+".json", user, pass, form)
}

func update(t *testing.T, sim *twiliorest.Server, sid string, form url.Values) reply {
	t.Helper()
	r, err := updateCall(t, t.Context(), sim, sim.AccountSID(), sim.AuthToken(), sid, form)
	require.NoError(t, err)
	return r
}

func TestCallTransferThenEnd(t *testing.T) {
	sim := newSim(t)
	r := update(t, sim, callSid, url.Values{"Twiml": {dialTwiml}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, callSid, r.body["sid"])
	assert.Equal(t, twiliorest.CallInProgress, r.body["status"])
	assert.Equal(t, twiliorest.CallInProgress, sim.CallStatus(callSid), "a redirected call goes on")

	r = update(t, sim, callSid, url.Values{"Status": {"completed"}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, twiliorest.CallCompleted, r.body["status"])
	assert.Equal(t, twiliorest.CallCompleted, sim.CallStatus(callSid))

	got := sim.CallUpdates()
	require.Len(t, got, 2)
	assert.Equal(t, callSid, got[0].CallSID)
	assert.Equal(t, dialTwiml, got[0].Twiml)
	assert.Equal(t, "completed", got[1].Status)
	dial, ok := got[0].Dial()
	require.True(t, ok)
	assert.Equal(t, twiliorest.Dial{CallerID: "+15550001111", Numbers: []string{"+15552223333"}, Sips: []string{"sip:agent@pbx.example.com"}}, dial)
	_, ok = got[1].Dial()
	assert.False(t, ok, "no TwiML")

	r = update(t, sim, callSid, url.Values{"Status": {"completed"}})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.EqualValues(t, 21220, r.body["code"], "the call is over")
	assert.Len(t, sim.CallUpdates(), 2)
}

func TestCallStates(t *testing.T) {
	sim := newSim(t)
	sim.ForgetCall("CAunknown")
	sim.CompleteCall("CAover")
	r := update(t, sim, "CAunknown", url.Values{"Status": {"completed"}})
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.EqualValues(t, 20404, r.body["code"])
	assert.Empty(t, sim.CallStatus("CAunknown"))
	r = update(t, sim, "CAover", url.Values{"Twiml": {dialTwiml}})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.EqualValues(t, 21220, r.body["code"])
	r = update(t, sim, "CAlive", url.Values{"Status": {"canceled"}})
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, twiliorest.CallInProgress, sim.CallStatus("CAlive"), "canceled leaves a call in progress alone")
	assert.Len(t, sim.CallUpdates(), 1)
}

func TestCallUpdateValidationAndAuth(t *testing.T) {
	sim := newSim(t)
	for code, form := range map[float64]url.Values{
		20001: {"Status": {"busy"}},
		12100: {"Twiml": {"<Response><Dial>"}},
	} {
		r := update(t, sim, callSid, form)
		assert.Equal(t, http.StatusBadRequest, r.status, form)
		assert.Equal(t, code, r.body["code"], form)
	}
	for _, form := range []url.Values{{}, {"Twiml": {dialTwiml}, "Url": {"https://example.com/t"}}, {"Twiml": {"<Other/>"}}} {
		assert.Equal(t, http.StatusBadRequest, update(t, sim, callSid, form).status, form)
	}
	r, err := updateCall(t, t.Context(), sim, sim.AccountSID(), "wrong", callSid, url.Values{"Status": {"completed"}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.EqualValues(t, 20003, r.body["code"])
	assert.Empty(t, sim.CallUpdates())
	assert.Equal(t, twiliorest.CallInProgress, sim.CallStatus(callSid))
}

func TestCallScriptedFailures(t *testing.T) {
	sim := newSim(t)
	sim.FailNextCallUpdate(twiliorest.Failure{Status: 500, Code: 20500}, twiliorest.Failure{Hangup: true})
	r := update(t, sim, callSid, url.Values{"Status": {"completed"}})
	assert.Equal(t, 500, r.status)
	assert.Equal(t, twiliorest.CallInProgress, sim.CallStatus(callSid))
	_, err := updateCall(t, t.Context(), sim, sim.AccountSID(), sim.AuthToken(), callSid, url.Values{"Status": {"completed"}})
	require.Error(t, err, "no answer")
	assert.Equal(t, twiliorest.CallCompleted, sim.CallStatus(callSid), "the update was applied all the same")
	assert.Len(t, sim.CallUpdates(), 1)

	send(t, sim, url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"x"}})
	assert.Len(t, sim.Messages(), 1, "the calls' failures are their own")
}

func TestWaitCallUpdates(t *testing.T) {
	sim := newSim(t)
	done := make(chan []twiliorest.CallUpdate, 1)
	go func() {
		got, err := sim.WaitCallUpdates(t.Context(), 1)
		assert.NoError(t, err)
		done <- got
	}()
	update(t, sim, callSid, url.Values{"Status": {"completed"}})
	select {
	case got := <-done:
		require.Len(t, got, 1)
		assert.Equal(t, callSid, got[0].CallSID)
	case <-time.After(10 * time.Second):
		t.Fatal("WaitCallUpdates did not return")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := sim.WaitCallUpdates(ctx, 2)
	require.ErrorIs(t, err, context.Canceled)
}
