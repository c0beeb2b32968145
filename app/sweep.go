package app

import (
	"context"
	"strings"
	"time"
)

// The bounds of the sweep, the look for deliveries never answered.
const (
	// sweepTimeout bounds one look.
	sweepTimeout = 30 * time.Second
	// firstSweepAfter is the most the first look waits after NewMessages,
	// so that a restart after a crash reports it promptly.
	firstSweepAfter = 5 * time.Second
)

// sweepLoop reports abandoned deliveries: first after firstSweepAfter (or
// AbandonedEvery if shorter), then every AbandonedEvery, until Shutdown.
func (s *MessagesService) sweepLoop() {
	t := time.NewTimer(min(firstSweepAfter, s.abandonedEvery))
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
		}
		s.sweep()
		t.Reset(s.abandonedEvery)
	}
}

// sweep claims the deliveries taken more than AbandonedAfter ago and never
// marked answered, by any process sharing the store, and logs each
// MessageSid among them at error level; idempotency-token keys are
// skipped (their delivery's MessageSid key stands for it). A store failure
// is logged at warn level: the next sweep tries again.
func (s *MessagesService) sweep() {
	defer s.wg.Busy()() // pending work while it runs: Shutdown reports cutting it
	ctx, cancel := context.WithTimeout(s.ctx, sweepTimeout)
	defer cancel()
	keys, err := s.ledger.Abandoned(ctx, s.abandonedAfter)
	if err != nil {
		s.log.Warn("could not look for answers never delivered: trying again later",
			"retry_in", s.abandonedEvery.String(), "err", err)
		return
	}
	reported := 0
	for _, k := range keys {
		sid, ok := strings.CutPrefix(k, sidPrefix)
		if !ok {
			continue
		}
		if s.working(sid) {
			s.log.Warn("answer still in progress long after the message was taken: not reported as lost, its outcome is logged when it ends",
				"message_sid", sid, "abandoned_after", s.abandonedAfter.String())
			continue
		}
		s.log.Error("answer never delivered: the gateway that took this message stopped before sending it",
			"message_sid", sid)
		reported++
	}
	s.log.Debug("looked for answers never delivered", "claimed", len(keys), "reported", reported)
}
