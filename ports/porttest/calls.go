package porttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// CallControlHarness is a CallControl under test together with the
// provider side (Twilio, or a fake of it), which knows every call id as a
// call in progress until it is ended, hung up or forgotten.
type CallControlHarness struct {
	Control ports.CallControl
	// Ended returns the ids of the calls the provider was asked to end
	// (and did), in order.
	Ended func() []string
	// Transferred returns the transfers the provider accepted, in order.
	Transferred func() []CallTransfer
	// Forget makes callID unknown to the provider: no such call.
	Forget func(callID string)
	// HangUp makes callID over, as when the caller hangs up: the provider
	// refuses to act on it.
	HangUp func(callID string)
	// RejectNext makes the provider refuse the next request on a call in
	// progress as invalid (a 4xx other than a 404).
	RejectNext func()
	// FailNext makes the provider fail the next request on a call in
	// progress (a 5xx).
	FailNext func()
}

// CallTransfer is a transfer as the provider received it: the call, where
// it was sent and with which caller id.
type CallTransfer struct {
	CallID, To, CallerID string
}

// CallControl runs the conformance suite of ports.CallControl. newHarness
// is called once per subtest; subtests run in parallel. Every hook of the
// harness must be set.
func CallControl(t *testing.T, newHarness func(t *testing.T) CallControlHarness) {
	const (
		agent    = "+15557654321"
		calledID = "+15551230000" // the number the caller dialled
	)

	t.Run("End", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newCallID()
		require.NoError(t, end(t, h.Control, id))
		assert.Equal(t, []string{id}, h.Ended())
		assert.Empty(t, h.Transferred())
	})

	t.Run("EndTwiceIsNotFound", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newCallID()
		require.NoError(t, end(t, h.Control, id))
		require.ErrorIs(t, end(t, h.Control, id), ports.ErrNotFound, "the call is over")
		assert.Equal(t, []string{id}, h.Ended())
	})

	t.Run("OverOrUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		over, unknown := newCallID(), newCallID()
		h.HangUp(over)
		h.Forget(unknown)
		for _, id := range []string{over, unknown} {
			require.ErrorIs(t, end(t, h.Control, id), ports.ErrNotFound, id)
			require.ErrorIs(t, transfer(t, h.Control, id, agent, calledID), ports.ErrNotFound, id)
		}
		assert.Empty(t, h.Ended())
		assert.Empty(t, h.Transferred())
	})

	t.Run("Transfer", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		number, sip := newCallID(), newCallID()
		const pbx = "sip:agent@pbx.example.com;transport=tls"
		require.NoError(t, transfer(t, h.Control, number, agent, calledID))
		require.NoError(t, transfer(t, h.Control, sip, pbx, calledID))
		assert.Equal(t, []CallTransfer{{number, agent, calledID}, {sip, pbx, calledID}}, h.Transferred())
		assert.Empty(t, h.Ended())
	})

	t.Run("InvalidTransferIsRejected", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newCallID()
		for _, bad := range []struct{ to, callerID string }{
			{"", calledID},
			{"5557654321", calledID},
			{"tel:+15557654321", calledID},
			{"sip:", calledID},
			{"+1555 765 4321", calledID},
			{"sip:agent@pbx.example.com\"/><Number>+19005550000</Number><Sip x=\"", calledID},
			{agent, ""},
			{agent, "reception"},
		} {
			require.ErrorIs(t, transfer(t, h.Control, id, bad.to, bad.callerID), ports.ErrRejected, "%+v", bad)
		}
		assert.Empty(t, h.Transferred(), "nothing reached the provider")
		require.NoError(t, transfer(t, h.Control, id, agent, calledID), "the call is still live")
	})

	t.Run("Rejected", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newCallID()
		h.RejectNext()
		require.ErrorIs(t, end(t, h.Control, id), ports.ErrRejected)
		assert.Empty(t, h.Ended())
		require.NoError(t, end(t, h.Control, id), "only the next request is refused")
		assert.Equal(t, []string{id}, h.Ended())
	})

	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newCallID()
		h.FailNext()
		require.ErrorIs(t, transfer(t, h.Control, id, agent, calledID), ports.ErrUnavailable)
		assert.Empty(t, h.Transferred())
		require.NoError(t, transfer(t, h.Control, id, agent, calledID))
		assert.Len(t, h.Transferred(), 1)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		id := newCallID()
		require.ErrorIs(t, h.Control.End(ctx, id), context.Canceled)
		require.ErrorIs(t, h.Control.Transfer(ctx, id, agent, calledID), context.Canceled)
		assert.Empty(t, h.Ended())
		assert.Empty(t, h.Transferred())
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		ctx := stepCtx(t)
		want := make(map[string]bool, concurrency)
		var wg sync.WaitGroup
		for i := range concurrency {
			id := newCallID()
			want[id] = true
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					err = h.Control.End(ctx, id)
				} else {
					err = h.Control.Transfer(ctx, id, agent, calledID)
				}
				if err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			})
		}
		waitGroup(t, "concurrent call control", &wg)
		for _, id := range h.Ended() {
			delete(want, id)
		}
		for _, tr := range h.Transferred() {
			delete(want, tr.CallID)
		}
		assert.Empty(t, want, "every call was acted on")
	})
}

// newCallID returns a random call id shaped like Twilio's CallSid.
func newCallID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "CA" + hex.EncodeToString(b)
}

func end(t *testing.T, c ports.CallControl, callID string) error {
	t.Helper()
	return withinErr(t, "End", func(ctx context.Context) error { return c.End(ctx, callID) })
}

func transfer(t *testing.T, c ports.CallControl, callID, to, callerID string) error {
	t.Helper()
	return withinErr(t, fmt.Sprintf("Transfer to %q", to), func(ctx context.Context) error {
		return c.Transfer(ctx, callID, to, callerID)
	})
}
