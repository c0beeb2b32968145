package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/twilio/messaging"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/twiliorest"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const from = "whatsapp:+14155238886"

// fastRetries are retry settings for tests: a short first backoff, a
// bound far above what the tests need.
const fastRetryBase = 10 * time.Millisecond

func setup(t *testing.T) (*messaging.Sender, *twiliorest.Server) {
	t.Helper()
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	return messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
		RetryBase: fastRetryBase,
	}), sim
}

// sent converts what the simulator accepted back into port messages.
func sent(t *testing.T, sim *twiliorest.Server) []ports.OutboundMessage {
	var out []ports.OutboundMessage
	for _, m := range sim.Messages() {
		msg := ports.OutboundMessage{To: m.To, From: m.From, Body: m.Body, ContentSID: m.ContentSID}
		if m.ContentVariables != "" {
			if err := json.Unmarshal([]byte(m.ContentVariables), &msg.ContentVariables); err != nil {
				t.Errorf("ContentVariables %q: %v", m.ContentVariables, err)
			}
		}
		out = append(out, msg)
	}
	return out
}

func TestConformance(t *testing.T) {
	porttest.MessageSender(t, func(t *testing.T) porttest.SenderHarness {
		s, sim := setup(t)
		return porttest.SenderHarness{
			Sender: s,
			Sent:   func() []ports.OutboundMessage { return sent(t, sim) },
			RejectNext: func() {
				sim.FailNext(twiliorest.Failure{Status: http.StatusBadRequest, Code: 63016})
			},
			RateLimitNext: func() {
				sim.FailNext(twiliorest.Failure{Status: http.StatusTooManyRequests, Code: 20429})
			},
			LoseNext: func() { sim.FailNext(twiliorest.Failure{Hangup: true}) },
		}
	})
}

func TestSendsFormLikeTwilio(t *testing.T) {
	s, sim := setup(t)
	id, err := s.Send(t.Context(), ports.OutboundMessage{
		To: "whatsapp:+15551234567", ContentSID: "HXabc", ContentVariables: map[string]string{"1": "Ana"},
	})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(id, "SM"), id)
	_, err = s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", From: "+15557654321", Body: "hi"})
	require.NoError(t, err)

	assert.Equal(t, []twiliorest.Message{
		{SID: id, To: "whatsapp:+15551234567", From: from, ContentSID: "HXabc", ContentVariables: `{"1":"Ana"}`},
		{SID: sim.Messages()[1].SID, To: "+15551234567", From: "+15557654321", Body: "hi"},
	}, sim.Messages())
}

func TestMessagingService(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	s := messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL() + "/",
		MessagingServiceSID: "MG123",
	})
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.NoError(t, err)
	require.Len(t, sim.Messages(), 1)
	assert.Equal(t, "MG123", sim.Messages()[0].MessagingServiceSID)
	assert.Empty(t, sim.Messages()[0].From)
}

func TestProviderErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		failure  twiliorest.Failure
		want     error
		unknown  bool // the outcome is unknown: Twilio may have sent it
		wantText string
	}{
		"outside 24h window": {twiliorest.Failure{Status: 400, Code: 63016}, ports.ErrRejected, false, "63016"},
		"invalid number":     {twiliorest.Failure{Status: 400, Code: 21211}, ports.ErrRejected, false, "21211"},
		"server error":       {twiliorest.Failure{Status: 500, Code: 20500}, ports.ErrUnavailable, true, "20500"},
		"bad gateway":        {twiliorest.Failure{Status: 502, Code: 20502}, ports.ErrUnavailable, true, "20502"},
	} {
		t.Run(name, func(t *testing.T) {
			s, sim := setup(t)
			sim.FailNext(tc.failure)
			_, err := s.Send(t.Context(), ports.OutboundMessage{To: "whatsapp:+15551234567", Body: "hi"})
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.unknown, errors.Is(err, ports.ErrOutcomeUnknown), "outcome unknown: %v", err)
			assert.Contains(t, err.Error(), tc.wantText)
			assert.Empty(t, sim.Messages())
			assert.Len(t, sim.Attempts(), 1, "not retried")
		})
	}
}

// A 429 is retried after the wait Twilio asks for (Retry-After), or after
// a backoff when it asks for none; the message is sent once.
func TestRateLimitRetried(t *testing.T) {
	for name, c := range map[string]struct {
		failures []twiliorest.Failure
		least    time.Duration // between the first attempt and the last
	}{
		"Retry-After": {[]twiliorest.Failure{{Status: 429, Code: 20429, RetryAfter: time.Second}}, 900 * time.Millisecond},
		"backoff":     {[]twiliorest.Failure{{Status: 429, Code: 20429}, {Status: 429, Code: 20429}, {Status: 429, Code: 20429}}, fastRetryBase * 7 / 2}, // at least 5 + 10 + 20 ms
	} {
		t.Run(name, func(t *testing.T) {
			logs := &testlog.Buffer{}
			sim := twiliorest.New(twiliorest.Options{})
			t.Cleanup(sim.Close)
			s := messaging.NewSender(messaging.Options{
				AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
				RetryBase: fastRetryBase, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			sim.FailNext(c.failures...)
			id, err := s.Send(t.Context(), ports.OutboundMessage{To: "whatsapp:+15551234567", Body: "busy hour"})
			require.NoError(t, err)
			require.Len(t, sim.Messages(), 1)
			assert.Equal(t, id, sim.Messages()[0].SID)
			attempts := sim.Attempts()
			require.Len(t, attempts, len(c.failures)+1)
			assert.GreaterOrEqual(t, attempts[len(attempts)-1].At.Sub(attempts[0].At), c.least)
			assert.Equal(t, len(c.failures), strings.Count(logs.String(), `msg="twilio did not take the message: retrying" reason="rate limited"`), logs.String())
			assert.NotContains(t, logs.String(), "busy hour", "the text is not logged")
			assert.NotContains(t, logs.String(), "+15551234567", "nor the recipient")
		})
	}
}

// Retries stop at RetryWithin: a Retry-After beyond it, or a backoff that
// would end after it, gives up at once with the rate limit's error (not
// sent).
func TestRateLimitGivesUp(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	s := messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
		RetryWithin: 2 * time.Second,
	})
	sim.FailNext(twiliorest.Failure{Status: 429, Code: 20429, RetryAfter: time.Minute})
	start := time.Now()
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.NotErrorIs(t, err, ports.ErrOutcomeUnknown, "a 429 was never processed")
	assert.Contains(t, err.Error(), "gave up after 1 attempts")
	assert.Less(t, time.Since(start), time.Minute/2, "it did not wait for a Retry-After beyond its bound")

	off := messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
		RetryWithin: -1,
	})
	sim.FailNext(twiliorest.Failure{Status: 429, Code: 20429})
	_, err = off.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Len(t, sim.Attempts(), 2, "no retries when they are off")
	assert.Empty(t, sim.Messages())
}

// A refused connection sent nothing: it is retried until Twilio is back.
func TestRefusedConnectionRetried(t *testing.T) {
	s, sim := setup(t)
	sim.Refuse()
	time.AfterFunc(200*time.Millisecond, func() { assert.NoError(t, sim.Listen()) })
	start := time.Now()
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "it waited for Twilio to listen again")
	assert.Len(t, sim.Messages(), 1)
	assert.Len(t, sim.Attempts(), 1, "refused connections never reached Twilio")
}

// A connection cut after the request was sent leaves the outcome unknown:
// Twilio may have taken the message (here it did), so it is not sent
// again.
func TestLostAnswerNotRetried(t *testing.T) {
	s, sim := setup(t)
	sim.FailNext(twiliorest.Failure{Hangup: true})
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrOutcomeUnknown)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Len(t, sim.Messages(), 1, "taken once")
	assert.Len(t, sim.Attempts(), 1, "not repeated")
}

func TestBodyTooLongIsRejected(t *testing.T) {
	s, _ := setup(t)
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: strings.Repeat("a", twiliorest.MaxBody+1)})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Contains(t, err.Error(), "21617")
}

func TestInvalidMessagesAreNotSent(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	noFrom := messaging.NewSender(messaging.Options{AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL()})
	s, _ := setup(t)
	for name, tc := range map[string]struct {
		sender *messaging.Sender
		msg    ports.OutboundMessage
	}{
		"no recipient":        {s, ports.OutboundMessage{Body: "hi"}},
		"no body or template": {s, ports.OutboundMessage{To: "+15551234567"}},
		"body and template":   {s, ports.OutboundMessage{To: "+15551234567", Body: "hi", ContentSID: "HX1"}},
		"no sender":           {noFrom, ports.OutboundMessage{To: "+15551234567", Body: "hi"}},
	} {
		_, err := tc.sender.Send(t.Context(), tc.msg)
		assert.ErrorIs(t, err, ports.ErrRejected, name)
	}
	assert.Zero(t, sim.Requests())
}

func TestBadCredentialsDoNotLeakToken(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	const token = "wrongSecretToken42"
	s := messaging.NewSender(messaging.Options{AccountSID: sim.AccountSID(), AuthToken: token, BaseURL: sim.URL(), From: from})
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Contains(t, err.Error(), "20003")
	assert.NotContains(t, err.Error(), token)
}

// Twilio unreachable all along: the sender retries within its bound, then
// gives up; nothing was sent.
func TestNetworkFailureIsUnavailable(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	s := messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
		RetryBase: fastRetryBase, RetryWithin: 300 * time.Millisecond,
	})
	sim.Close()
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.NotErrorIs(t, err, ports.ErrOutcomeUnknown, "nothing left: no connection")
	assert.Regexp(t, `gave up after [2-9]\d* attempts`, err.Error())
	assert.NotContains(t, err.Error(), sim.AuthToken())
}

func TestContextCancelsRequest(t *testing.T) {
	s, sim := setup(t)
	sim.SetDelay(time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, ports.OutboundMessage{To: "+15551234567", Body: "hi"})
		done <- err
	}()
	require.Eventually(t, func() bool { return sim.Requests() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
	assert.Empty(t, sim.Messages())
}

// A request that times out after it was sent may have been taken: the
// outcome is unknown, the request is not repeated, and the error names the
// URL it went to (the configured base URL, without credentials), not
// twilio-go's https://api.twilio.com.
func TestTimeoutIsUnknownAndNamesBaseURL(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	sim.SetDelay(time.Minute)
	base := strings.Replace(sim.URL(), "http://", "http://proxyuser:proxy-s3cret@", 1)
	s := messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: base, From: from,
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond},
	})
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	require.ErrorIs(t, err, ports.ErrOutcomeUnknown)
	assert.NoError(t, t.Context().Err())
	assert.Contains(t, err.Error(), sim.URL()+"/2010-04-01/Accounts/"+sim.AccountSID()+"/Messages.json")
	assert.NotContains(t, err.Error(), "api.twilio.com")
	assert.NotContains(t, err.Error(), "proxy-s3cret")
	assert.NotContains(t, err.Error(), sim.AuthToken())
}
