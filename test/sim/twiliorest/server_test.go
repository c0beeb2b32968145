package twiliorest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/test/sim/twiliorest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type reply struct {
	status int
	body   map[string]any
}

func post(t *testing.T, ctx context.Context, sim *twiliorest.Server, account, user, pass string, form url.Values) (reply, error) {
	t.Helper()
	return postForm(t, ctx, sim.URL()+"/2010-04-01/Accounts/"+account+"/Messages.json", user, pass, form)
}

// postForm posts form to target with HTTP Basic credentials and decodes the
// JSON answer.
func postForm(t *testing.T, ctx context.Context, target, user, pass string, form url.Values) (reply, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return reply{resp.StatusCode, body}, nil
}

func send(t *testing.T, sim *twiliorest.Server, form url.Values) reply {
	t.Helper()
	r, err := post(t, t.Context(), sim, sim.AccountSID(), sim.AccountSID(), sim.AuthToken(), form)
	require.NoError(t, err)
	return r
}

func newSim(t *testing.T) *twiliorest.Server {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	return sim
}

func TestAcceptsAndRecordsInOrder(t *testing.T) {
	sim := newSim(t)
	r := send(t, sim, url.Values{"To": {"whatsapp:+15551234567"}, "From": {"whatsapp:+14155238886"}, "Body": {"one"}})
	require.Equal(t, http.StatusCreated, r.status)
	assert.Equal(t, "queued", r.body["status"])
	sid, _ := r.body["sid"].(string)
	assert.True(t, strings.HasPrefix(sid, "SM") && len(sid) == 34, sid)
	r = send(t, sim, url.Values{"To": {"+15551234567"}, "MessagingServiceSid": {"MG1"},
		"ContentSid": {"HX1"}, "ContentVariables": {`{"1":"Ana"}`}})
	require.Equal(t, http.StatusCreated, r.status)

	got := sim.Messages()
	require.Len(t, got, 2)
	assert.Equal(t, twiliorest.Message{SID: sid, To: "whatsapp:+15551234567", From: "whatsapp:+14155238886", Body: "one"}, got[0])
	assert.Equal(t, "HX1", got[1].ContentSID)
	assert.Equal(t, `{"1":"Ana"}`, got[1].ContentVariables)
	assert.Equal(t, "MG1", got[1].MessagingServiceSID)
	assert.NotEqual(t, got[0].SID, got[1].SID)
}

func TestAuthentication(t *testing.T) {
	sim := newSim(t)
	form := url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"x"}}
	r, err := post(t, t.Context(), sim, sim.AccountSID(), sim.AccountSID(), "wrong", form)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.EqualValues(t, 20003, r.body["code"])

	r, err = post(t, t.Context(), sim, "ACother", sim.AccountSID(), sim.AuthToken(), form)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Empty(t, sim.Messages())
}

func TestValidation(t *testing.T) {
	sim := newSim(t)
	for code, form := range map[float64]url.Values{
		21604: {"From": {"+1556"}, "Body": {"x"}},
		21603: {"To": {"+1555"}, "Body": {"x"}},
		21602: {"To": {"+1555"}, "From": {"+1556"}},
		21617: {"To": {"+1555"}, "From": {"+1556"}, "Body": {strings.Repeat("é", twiliorest.MaxBody+1)}},
		21656: {"To": {"+1555"}, "From": {"+1556"}, "ContentSid": {"HX1"}, "ContentVariables": {"{"}},
	} {
		r := send(t, sim, form)
		assert.Equal(t, http.StatusBadRequest, r.status, code)
		assert.Equal(t, code, r.body["code"])
	}
	r := send(t, sim, url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {strings.Repeat("é", twiliorest.MaxBody)}})
	assert.Equal(t, http.StatusCreated, r.status, "1,600 characters are allowed")
}

func TestScriptedFailures(t *testing.T) {
	sim := newSim(t)
	sim.FailNext(twiliorest.Failure{Status: 400, Code: 63016}, twiliorest.Failure{Status: 500, Code: 20500})
	form := url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"x"}}
	r := send(t, sim, form)
	assert.Equal(t, 400, r.status)
	assert.EqualValues(t, 63016, r.body["code"])
	assert.Equal(t, "https://www.twilio.com/docs/errors/63016", r.body["more_info"])
	r = send(t, sim, form)
	assert.Equal(t, 500, r.status)
	r = send(t, sim, form)
	assert.Equal(t, http.StatusCreated, r.status)
	assert.Len(t, sim.Messages(), 1)
	assert.Equal(t, 3, sim.Requests())
}

func TestDelayHonoursClientCancellation(t *testing.T) {
	sim := newSim(t)
	sim.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := post(t, ctx, sim, sim.AccountSID(), sim.AccountSID(), sim.AuthToken(),
		url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"x"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, sim.Messages())
}

func TestRateLimitWithRetryAfter(t *testing.T) {
	sim := newSim(t)
	sim.FailNext(twiliorest.Failure{Status: http.StatusTooManyRequests, Code: 20429, RetryAfter: 1500 * time.Millisecond})
	form := url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"x"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		sim.URL()+"/2010-04-01/Accounts/"+sim.AccountSID()+"/Messages.json", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sim.AccountSID(), sim.AuthToken())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"), "whole seconds, rounded up")

	assert.Equal(t, http.StatusCreated, send(t, sim, form).status)
	attempts := sim.Attempts()
	require.Len(t, attempts, 2)
	assert.Equal(t, []int{http.StatusTooManyRequests, http.StatusCreated}, []int{attempts[0].Status, attempts[1].Status})
	assert.Equal(t, "x", attempts[1].Body)
	assert.False(t, attempts[1].At.Before(attempts[0].At))
}

func TestHangupAcceptsAndLosesTheResponse(t *testing.T) {
	sim := newSim(t)
	sim.FailNext(twiliorest.Failure{Hangup: true})
	_, err := post(t, t.Context(), sim, sim.AccountSID(), sim.AccountSID(), sim.AuthToken(),
		url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"lost answer"}})
	require.Error(t, err, "no response")
	require.Len(t, sim.Messages(), 1, "the message was accepted all the same")
	assert.Equal(t, "lost answer", sim.Messages()[0].Body)
	assert.Equal(t, 0, sim.Attempts()[0].Status)
}

func TestRefuseAndListenAgain(t *testing.T) {
	sim := newSim(t)
	form := url.Values{"To": {"+1555"}, "From": {"+1556"}, "Body": {"x"}}
	// A client without keep-alives: a connection the server closes stays
	// in a client's pool until the client notices, which is its business.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	postNew := func() (int, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			sim.URL()+"/2010-04-01/Accounts/"+sim.AccountSID()+"/Messages.json", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(sim.AccountSID(), sim.AuthToken())
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	status, err := postNew()
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status)

	sim.Refuse()
	_, err = postNew()
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "nothing listens")

	require.NoError(t, sim.Listen())
	status, err = postNew()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, status, "the same URL works again")
	assert.Len(t, sim.Messages(), 2)
	assert.Len(t, sim.Attempts(), 2, "the refused connection never reached the server")
}
