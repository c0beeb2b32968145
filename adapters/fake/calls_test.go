package fake_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

func TestCallControlConformance(t *testing.T) {
	porttest.CallControl(t, func(*testing.T) porttest.CallControlHarness {
		c := fake.NewCallControl()
		return porttest.CallControlHarness{
			Control: c,
			Ended:   c.Ended,
			Transferred: func() []porttest.CallTransfer {
				var out []porttest.CallTransfer
				for _, tr := range c.Transfers() {
					out = append(out, porttest.CallTransfer(tr))
				}
				return out
			},
			Forget:     c.Forget,
			HangUp:     c.HangUp,
			RejectNext: c.RejectNext,
			FailNext:   func() { c.FailNext(ports.ErrUnavailable) },
		}
	})
}

func TestCallControlWaitsAndDelays(t *testing.T) {
	c := fake.NewCallControl()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan []fake.Transfer, 1)
	go func() {
		got, err := c.WaitTransfers(ctx, 1)
		assert.NoError(t, err)
		done <- got
	}()
	require.NoError(t, c.Transfer(ctx, "CA1", "sip:desk@pbx.example.com", "+15551230000"))
	assert.Equal(t, []fake.Transfer{{CallID: "CA1", To: "sip:desk@pbx.example.com", CallerID: "+15551230000"}}, <-done)

	c.SetDelay(time.Minute)
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, c.End(short, "CA1"), context.DeadlineExceeded)
	c.SetDelay(0)
	require.NoError(t, c.End(ctx, "CA1"), "a transferred call goes on until ended")
	got, err := c.WaitEnded(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"CA1"}, got)
	require.ErrorIs(t, c.End(ctx, ""), ports.ErrRejected)
}
