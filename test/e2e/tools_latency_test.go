package e2e_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/test/sim/mediasim"
)

// TestToolAnswerToAudio measures, from the simulators, the time from a
// tool's answer (the tool server's response written) to the first audio
// of the model's answer at the caller, over a few calls per backend, and
// requires that the answer followed the tool's result. The figures are
// logged, not asserted: the machine's load would make any bound flaky.
func TestToolAnswerToAudio(t *testing.T) {
	const calls = 5
	for _, b := range speechBackends {
		t.Run(b.name, func(t *testing.T) {
			var took []time.Duration
			for range calls {
				took = append(took, answerToAudio(t, b))
			}
			slices.Sort(took)
			t.Logf("%s: tool answer to first audio at the caller, %d calls: min %v, median %v, max %v",
				b.name, calls, took[0], took[calls/2], took[calls-1])
		})
	}
}

// answerToAudio places a call on backend b whose model calls the lookup
// tool and then says its output, and returns the time from the tool's
// answer to the first audio at the caller.
func answerToAudio(t *testing.T, b speechBackend) time.Duration {
	t.Helper()
	ts := newToolServer(t)
	e := newCallEnv(t, b, simOptions{Reply: "Anything else?", SayToolOutputs: true}, edits(withTools(t, ts), noHold))
	sid, caller, sess := e.callWith(mediasim.Options{Clock: mediasim.Faster(20)})
	release := ts.hold()
	defer release()

	e.callTool(sess, "call_a", "lookup", `{"date":"today"}`)
	e.until("the tool running", func() bool { return len(ts.received()) == 1 })
	require.Zero(t, countEvent(caller.Frames(), "media"), "nothing said before the answer")
	heard := make(chan time.Time, 1)
	go func() {
		for e.ctx.Err() == nil {
			if countEvent(caller.Frames(), "media") > 0 {
				heard <- time.Now()
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	release()
	var at time.Time
	select {
	case at = <-heard:
	case <-e.ctx.Done():
		t.Fatal("no answer at the caller")
	}
	answered := ts.answers()
	require.Len(t, answered, 1)
	assert.Equal(t, toolAnswer, e.toolResult(sess, "call_a"), "the answer followed the tool's result")

	require.NoError(t, caller.PlayOut(e.ctx))
	require.NoError(t, caller.HangUp(e.ctx))
	ended(e, sess)
	assert.Equal(t, "caller_hangup", e.summary(sid)["end_reason"])
	assert.Empty(t, e.modelErrors())
	return at.Sub(answered[0])
}
