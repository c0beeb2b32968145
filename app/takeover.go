package app

import (
	"context"
	"time"

	"github.com/convgateway/gateway/ports"
)

// maxWatchEvery bounds how long a repeat of a delivery another gateway
// owns waits between two looks at it (TakeOver): a tenth of the lease's
// ttl, at most this.
const maxWatchEvery = 500 * time.Millisecond

// await looks at the delivery j watches every watchEvery, for as long as
// this instance's lease ttl, and takes it over if its owner stops
// meanwhile without answering it. It reports whether j took it (j.keys
// are then all the delivery's keys); it gives up when the delivery is
// answered (or reported), when its owner kept its lease alive all that
// time, or when ctx ends. A failing store is retried until then.
func (s *MessagesService) await(ctx context.Context, j *job) bool {
	deadline := time.Now().Add(s.instance.TTL() + s.watchEvery)
	t := time.NewTimer(s.watchEvery)
	defer t.Stop()
	failed := false // a store failure is logged once
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		claim, err := s.takeOver(ctx, j.watch)
		switch {
		case err != nil && ctx.Err() != nil:
			return false
		case err != nil && !failed:
			j.log.Warn("could not look at a repeated message another gateway took: trying again", "err", err)
			failed = true
		case err != nil:
		case claim == ports.ClaimTaken:
			j.log.Warn("message taken over: the gateway that took it stopped before answering it", "key", keyKind(j.watch))
			j.keys = allKeys(j.msg)
			j.taken.Store(true)
			return true
		case claim != ports.ClaimBusy:
			return false
		}
		if time.Now().After(deadline) {
			j.log.Info("the gateway that took this message is alive: it answers it")
			return false
		}
		t.Reset(s.watchEvery)
	}
}

// takeOver takes over the delivery recorded under key if its owner
// stopped (DeliveryLedger.TakeOver). While this instance does not hold its
// lease (at start, before the store answered; or after it lapsed) it
// takes nothing and reports the delivery busy: what it took would count as
// unowned, and another gateway could take it over in turn.
func (s *MessagesService) takeOver(ctx context.Context, key string) (ports.Claim, error) {
	if !s.instance.Held() {
		return ports.ClaimBusy, nil
	}
	return s.ledger.TakeOver(ctx, key, s.instance.ID())
}
