package calls_test

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/twilio/calls"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	callSid  = "CAfedcba9876543210fedcba9876543210"
	agent    = "+15557654321"
	calledID = "+15551230000"
)

func setup(t *testing.T) (*calls.Control, *twiliorest.Server) {
	t.Helper()
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	return calls.New(calls.Options{AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL()}), sim
}

func TestConformance(t *testing.T) {
	porttest.CallControl(t, func(t *testing.T) porttest.CallControlHarness {
		c, sim := setup(t)
		return porttest.CallControlHarness{
			Control: c,
			Ended: func() []string {
				var ids []string
				for _, u := range sim.CallUpdates() {
					if u.Status == "completed" {
						ids = append(ids, u.CallSID)
					}
				}
				return ids
			},
			Transferred: func() []porttest.CallTransfer {
				var out []porttest.CallTransfer
				for _, u := range sim.CallUpdates() {
					if d, ok := u.Dial(); ok {
						out = append(out, porttest.CallTransfer{CallID: u.CallSID, To: strings.Join(append(d.Numbers, d.Sips...), ","), CallerID: d.CallerID})
					}
				}
				return out
			},
			Forget:     sim.ForgetCall,
			HangUp:     sim.CompleteCall,
			RejectNext: func() { sim.FailNextCallUpdate(twiliorest.Failure{Status: http.StatusForbidden, Code: 20403}) },
			FailNext: func() {
				sim.FailNextCallUpdate(twiliorest.Failure{Status: http.StatusInternalServerError, Code: 20500})
			},
		}
	})
}

// node is an XML element, parsed: twilio-go writes attributes in random
// order, so documents are compared as trees.
type node struct {
	Name     string
	Attrs    map[string]string
	Text     string
	Children []node
}

func (n *node) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	n.Name = start.Name.Local
	for _, a := range start.Attr {
		if n.Attrs == nil {
			n.Attrs = map[string]string{}
		}
		n.Attrs[a.Name.Local] = a.Value
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var child node
			if err := child.UnmarshalXML(d, tok); err != nil {
				return err
			}
			n.Children = append(n.Children, child)
		case xml.CharData:
			n.Text += strings.TrimSpace(string(tok))
		case xml.EndElement:
			return nil
		}
	}
}

func parse(t *testing.T, doc string) node {
	t.Helper()
	var n node
	require.NoError(t, xml.Unmarshal([]byte(doc), &n), doc)
	return n
}

func TestTransferTwiML(t *testing.T) {
	for name, tc := range map[string]struct{ to, noun string }{
		"number": {agent, "Number"},
		"sip":    {"sip:desk@pbx.example.com;transport=tls?X-Ticket=4&X-From=ai", "Sip"},
	} {
		t.Run(name, func(t *testing.T) {
			c, sim := setup(t)
			require.NoError(t, c.Transfer(t.Context(), callSid, tc.to, calledID))
			updates := sim.CallUpdates()
			require.Len(t, updates, 1)
			assert.Equal(t, callSid, updates[0].CallSID)
			assert.Empty(t, updates[0].Status, "a transfer does not end the call itself")
			assert.Empty(t, updates[0].URL)
			assert.Equal(t, node{Name: "Response", Children: []node{{
				Name:     "Dial",
				Attrs:    map[string]string{"callerId": calledID},
				Children: []node{{Name: tc.noun, Text: tc.to}},
			}}}, parse(t, updates[0].Twiml), updates[0].Twiml)
		})
	}
}

func TestEndCompletesTheCall(t *testing.T) {
	c, sim := setup(t)
	require.NoError(t, c.End(t.Context(), callSid))
	updates := sim.CallUpdates()
	require.Len(t, updates, 1)
	assert.Equal(t, twiliorest.CallUpdate{At: updates[0].At, CallSID: callSid, Status: "completed"}, updates[0])
	assert.Equal(t, twiliorest.CallCompleted, sim.CallStatus(callSid))
}

func TestTwilioErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		failure twiliorest.Failure
		want    error
		unknown bool // Twilio may have acted on the request
	}{
		"unknown call":    {twiliorest.Failure{Status: 404, Code: 20404}, ports.ErrNotFound, false},
		"call over":       {twiliorest.Failure{Status: 400, Code: 21220}, ports.ErrNotFound, false},
		"invalid":         {twiliorest.Failure{Status: 400, Code: 21211}, ports.ErrRejected, false},
		"forbidden":       {twiliorest.Failure{Status: 403, Code: 20403}, ports.ErrRejected, false},
		"rate limited":    {twiliorest.Failure{Status: 429, Code: 20429}, ports.ErrUnavailable, false},
		"server error":    {twiliorest.Failure{Status: 500, Code: 20500}, ports.ErrUnavailable, true},
		"bad gateway":     {twiliorest.Failure{Status: 502, Code: 20502}, ports.ErrUnavailable, true},
		"answer was lost": {twiliorest.Failure{Hangup: true}, ports.ErrUnavailable, true},
	} {
		t.Run(name, func(t *testing.T) {
			c, sim := setup(t)
			sim.FailNextCallUpdate(tc.failure)
			err := c.End(t.Context(), callSid)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.unknown, errors.Is(err, ports.ErrOutcomeUnknown), "outcome unknown: %v", err)
			if tc.failure.Code != 0 {
				assert.Contains(t, err.Error(), "error "+strconv.Itoa(tc.failure.Code))
			}
			assert.Contains(t, err.Error(), callSid)
			assert.Equal(t, 1, sim.Requests(), "never repeated")
		})
	}
}

func TestCallStatesFromTwilio(t *testing.T) {
	c, sim := setup(t)
	sim.CompleteCall("CAover")
	sim.ForgetCall("CAgone")
	require.ErrorIs(t, c.Transfer(t.Context(), "CAover", agent, calledID), ports.ErrNotFound)
	require.ErrorIs(t, c.End(t.Context(), "CAgone"), ports.ErrNotFound)
	require.NoError(t, c.Transfer(t.Context(), callSid, agent, calledID))
	require.NoError(t, c.End(t.Context(), callSid), "a transferred call can still be ended")
	require.ErrorIs(t, c.End(t.Context(), callSid), ports.ErrNotFound, "once")
}

func TestRefusedConnectionIsUnavailable(t *testing.T) {
	c, sim := setup(t)
	sim.Refuse()
	err := c.End(t.Context(), callSid)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.NotErrorIs(t, err, ports.ErrOutcomeUnknown, "nothing left")
	assert.Empty(t, sim.CallUpdates())
}

func TestWrongTokenIsRejectedAndNotShown(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	const token = "wrongSecretToken42"
	c := calls.New(calls.Options{AccountSID: sim.AccountSID(), AuthToken: token, BaseURL: sim.URL()})
	err := c.Transfer(t.Context(), callSid, agent, calledID)
	require.ErrorIs(t, err, ports.ErrRejected)
	assert.Contains(t, err.Error(), "20003")
	assert.NotContains(t, err.Error(), token)
	assert.Empty(t, sim.CallUpdates())
}

func TestInvalidRequestsAreNotSent(t *testing.T) {
	c, sim := setup(t)
	for _, id := range []string{"", "CA1/../../Messages", "CA1?Status=completed", "CA1.json", strings.Repeat("A", 65)} {
		assert.ErrorIs(t, c.End(t.Context(), id), ports.ErrRejected, id)
		assert.ErrorIs(t, c.Transfer(t.Context(), id, agent, calledID), ports.ErrRejected, id)
	}
	for _, target := range [][2]string{{"", calledID}, {"00155576", calledID}, {"sip:", calledID}, {agent, "sip:me@x.com"}, {agent, "Reception"}} {
		assert.ErrorIs(t, c.Transfer(t.Context(), callSid, target[0], target[1]), ports.ErrRejected, target)
	}
	bad := calls.New(calls.Options{AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: "not a url"})
	assert.ErrorIs(t, bad.End(t.Context(), callSid), ports.ErrRejected)
	assert.Zero(t, sim.Requests())
}

func TestContextCancelsRequest(t *testing.T) {
	c, sim := setup(t)
	sim.SetDelay(time.Minute) // the bound, should the context not be honoured
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { // cancels once the request reached Twilio
		for sim.Requests() == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	require.ErrorIs(t, c.Transfer(ctx, callSid, agent, calledID), context.Canceled)
	assert.Equal(t, 1, sim.Requests())
	assert.Empty(t, sim.CallUpdates())
}

// A request that times out after it was sent may have been acted on; the
// error names the URL it went to (the base URL), not twilio-go's.
func TestTimeoutIsUnknown(t *testing.T) {
	sim := twiliorest.New(twiliorest.Options{})
	t.Cleanup(sim.Close)
	sim.SetDelay(time.Minute)
	c := calls.New(calls.Options{
		AccountSID: sim.AccountSID(), AuthToken: sim.AuthToken(), BaseURL: sim.URL(),
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond},
	})
	err := c.End(t.Context(), callSid)
	require.ErrorIs(t, err, ports.ErrOutcomeUnknown)
	require.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Contains(t, err.Error(), sim.URL()+"/2010-04-01/Accounts/"+sim.AccountSID()+"/Calls/"+callSid+".json")
	assert.NotContains(t, err.Error(), sim.AuthToken())
}
