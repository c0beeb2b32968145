package messaging_test

import (
	"context"
	"encoding/json"
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
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const from = "whatsapp:+14155238886"

func setup(t *testing.T) (*messaging.Sender, *twiliorest.Server) {
	t.Helper()
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	return messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
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
		wantText string
	}{
		"outside 24h window": {twiliorest.Failure{Status: 400, Code: 63016}, ports.ErrRejected, "63016"},
		"invalid number":     {twiliorest.Failure{Status: 400, Code: 21211}, ports.ErrRejected, "21211"},
		"server error":       {twiliorest.Failure{Status: 500, Code: 20500}, ports.ErrUnavailable, "20500"},
		"rate limited":       {twiliorest.Failure{Status: 429, Code: 20429}, ports.ErrUnavailable, "20429"},
	} {
		t.Run(name, func(t *testing.T) {
			s, sim := setup(t)
			sim.FailNext(tc.failure)
			_, err := s.Send(t.Context(), ports.OutboundMessage{To: "whatsapp:+15551234567", Body: "hi"})
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.wantText)
			assert.Empty(t, sim.Messages())
		})
	}
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

func TestNetworkFailureIsUnavailable(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	s := messaging.NewSender(messaging.Options{AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from})
	sim.Close()
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
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

func TestTimeoutIsUnavailable(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	sim.SetDelay(time.Minute)
	s := messaging.NewSender(messaging.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(), From: from,
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond},
	})
	_, err := s.Send(t.Context(), ports.OutboundMessage{To: "+15551234567", Body: "hi"})
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.NoError(t, t.Context().Err())
}
