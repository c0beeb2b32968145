package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// watchTicks is how many times per StreamIdleTimeout watch looks at the
// call: a stall is noticed between 1 and 1.25 times the timeout after it
// began.
const watchTicks = 4

// Errors of the endings watch decides.
var (
	errStreamIdle    = errors.New("no media from the caller")
	errStreamStalled = errors.New("a write to the caller blocked: the peer stopped reading")
	errModelStalled  = errors.New("a write of caller audio to the speech session blocked")
)

// watch ends the call when, for StreamIdleTimeout, the caller sent no
// media ("stream_idle": Twilio sends a frame every 20 ms, silence
// included, so a stream without media has stalled), a write to the caller
// did not return ("stream_stalled": the peer stopped reading, and the
// connection's buffers are full), or a write of caller audio to the speech
// session did not ("model_stalled"). It reads the counters readCaller and
// own keep; it takes no lock and adds nothing per frame but the counters.
// The ending closes both sides, which ends the blocked write.
func (c *call) watch(ctx context.Context) error {
	limit := c.svc.d.StreamIdleTimeout
	tick := time.NewTicker(limit / watchTicks)
	defer tick.Stop()
	now := time.Now()
	in := progress{n: c.appending.Load(), at: now}
	out := progress{n: c.writing.Load(), at: now}
	for {
		select {
		case <-ctx.Done():
			return nil
		case now = <-tick.C:
		}
		switch n := c.appending.Load(); {
		case !in.stuck(n, now, limit):
		case n%2 == 1:
			return &ending{reason: "model_stalled", side: sideModel, err: fmt.Errorf("%w for %v", errModelStalled, limit)}
		default:
			return &ending{reason: "stream_idle", side: sideCaller, err: fmt.Errorf("%w for %v", errStreamIdle, limit)}
		}
		if n := c.writing.Load(); out.stuck(n, now, limit) && n%2 == 1 {
			return &ending{reason: "stream_stalled", side: sideCaller, err: fmt.Errorf("%w for %v", errStreamStalled, limit)}
		}
	}
}

// progress is the watchdog's memory of one counter: its value and when it
// last changed.
type progress struct {
	n  uint64
	at time.Time
}

// stuck records n, the counter's value at now, and reports whether it has
// not changed for limit.
func (p *progress) stuck(n uint64, now time.Time, limit time.Duration) bool {
	if n != p.n {
		p.n, p.at = n, now
		return false
	}
	return now.Sub(p.at) >= limit
}
