package e2e_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/openairest"
)

// BenchmarkMessagesWebhook measures how long the gateway takes to answer Twilio's
// messaging webhook, through the real HTTP server with the real adapters
// and the simulators, and reports the median and the 99th percentile
// (p50-ms, p99-ms) besides the mean (ns/op). It reports speed and asserts
// none.
//
//   - inline: the assistant answers at once (the simulator's echo); the
//     webhook answers with the TwiML <Message>. One user, so the thread is
//     reused, as in a conversation. With the assistants backend the figure
//     is dominated by the adapter's run polling (every 500 ms).
//   - slow-assistant: the assistant takes 500 ms, more than
//     REPLY_INLINE_TIMEOUT (200 ms); the webhook answers an empty
//     <Response/> after the timeout and the answer goes out through the
//     Twilio REST simulator. Each message comes from a new user, so that
//     answers do not queue behind each other.
//
// Run with a fixed count, for example:
//
//	go test -run '^$' -bench BenchmarkMessagesWebhook -benchtime 200x ./test/e2e/
func BenchmarkMessagesWebhook(b *testing.B) {
	for _, backend := range []string{configs.BackendResponses, configs.BackendAssistants} {
		b.Run("inline/"+backend, func(b *testing.B) {
			benchmarkMsgWebhook(b, backend, configs.Defaults().ReplyInlineTimeout, 0, false)
		})
	}
	for _, backend := range []string{configs.BackendResponses, configs.BackendAssistants} {
		b.Run("slow-assistant/"+backend, func(b *testing.B) {
			benchmarkMsgWebhook(b, backend, 200*time.Millisecond, 500*time.Millisecond, true)
		})
	}
}

// benchmarkMsgWebhook posts b.N messages one after another, each answered with
// the assistant taking delay, and reports the webhook's response times.
// With newUsers every message comes from a different user; else all come
// from one.
func benchmarkMsgWebhook(b *testing.B, backend string, inlineTimeout, delay time.Duration, newUsers bool) {
	e := newMessagingEnv(b, backend, func(c *configs.Config) { c.ReplyInlineTimeout = inlineTimeout })
	// Log at the default LOG_LEVEL, as a deployment would.
	e.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: e.cfg.SlogLevel()}))
	e.openai.SetDelay(delay)
	wantInline := delay < inlineTimeout
	gw := e.newMessagingGateway()
	if !newUsers {
		// The user's thread exists before the measurements start.
		if _, err := gw.postAnswer(msgInbound{Sid: "SMwarmup", Body: "warm up"}); err != nil {
			b.Fatal(err)
		}
	}

	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in := msgInbound{Sid: fmt.Sprintf("SMbench%08d", i), Body: fmt.Sprintf("question %d", i)}
		if newUsers {
			in.From = fmt.Sprintf("whatsapp:+1555%07d", i)
		}
		start := time.Now()
		a, err := gw.postAnswer(in)
		took = append(took, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if a.Status != http.StatusOK || (len(a.Messages) == 1) != wantInline {
			b.Fatalf("message %d: answer %d %s, want inline=%v", i, a.Status, a.Body, wantInline)
		}
	}
	b.StopTimer()

	slices.Sort(took)
	b.ReportMetric(msgMillis(msgPercentile(took, 50)), "p50-ms")
	b.ReportMetric(msgMillis(msgPercentile(took, 99)), "p99-ms")
	if !wantInline {
		// Every answer still reaches the user (the drain at the end of the
		// benchmark waits for the last ones).
		gw.stop()
		if got := len(e.twilio.Messages()); got != b.N {
			b.Fatalf("%d answers sent through the REST API, want %d", got, b.N)
		}
		if got := e.openai.Calls(openairest.RouteCreateConversation) + e.openai.Calls(openairest.RouteCreateThread); got != b.N {
			b.Fatalf("%d threads made for %d users", got, b.N)
		}
	}
}

// msgPercentile returns the p-th percentile of sorted durations (nearest
// rank).
func msgPercentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

func msgMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
