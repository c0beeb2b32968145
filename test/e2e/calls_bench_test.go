package e2e_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
)

// handshake is the simulated OpenAI handshake (TLS, upgrade and session
// set-up over the internet): a few hundred milliseconds.
const handshake = 300 * time.Millisecond

// BenchmarkFirstAudio measures, for a call whose assistant speaks first,
// the time from the start message to the first assistant audio at the
// caller, for each speech model, with and without pre-warming the model's
// session while /incoming-call is answered. gap is how long Twilio takes
// between the TwiML answer and the stream's start message.
//
//	go test -run '^$' -bench FirstAudio -benchtime 20x ./test/e2e/
func BenchmarkFirstAudio(b *testing.B) {
	for _, backend := range speechBackends {
		for _, prewarm := range []bool{true, false} {
			for _, gap := range []time.Duration{0, 250 * time.Millisecond} {
				b.Run(fmt.Sprintf("%s/prewarm=%v/gap=%v", backend.name, prewarm, gap), func(b *testing.B) {
					e := newCallEnv(b, backend, simOptions{HandshakeDelay: handshake, Reply: "Hello!"},
						func(c *configs.Config) {
							c.AISpeaksFirst = true
							c.Prewarm = prewarm
						})
					var firsts []time.Duration
					for b.Loop() {
						sid, a := e.placeCall(callFrom)
						time.Sleep(gap)
						caller := e.dial(a, nil)
						require.NoError(b, caller.Start(e.ctx, callInfo(sid, a.Params)))
						e.until("the first audio", func() bool { _, ok := caller.FirstAudio(); return ok })
						d, _ := caller.FirstAudio()
						firsts = append(firsts, d)
						require.NoError(b, caller.HangUp(e.ctx))
						<-caller.Done()
					}
					slices.Sort(firsts)
					b.ReportMetric(ms(firsts[len(firsts)/2]), "p50-ms")
					b.ReportMetric(ms(firsts[len(firsts)-1]), "max-ms")
				})
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
