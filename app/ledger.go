package app

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/convgateway/gateway/ports"
)

// The namespaces of the keys the service records in
// DeliveryLedger.FirstSeen.
const (
	sidPrefix  = "sid:"  // the MessageSid
	idemPrefix = "idem:" // the I-Twilio-Idempotency-Token
)

// markTimeout bounds recording that a delivery was answered.
const markTimeout = 5 * time.Second

// keyKind names the kind of a recorded key, for logs ("sid" or "idem"),
// without the idempotency token itself.
func keyKind(key string) string {
	kind, _, _ := strings.Cut(key, ":")
	return kind
}

// firstSeen records the delivery, owned by this instance, under its
// MessageSid and, when Twilio sent one, its idempotency token, and reports
// whether neither was seen before. The MessageSid is always recorded so
// that a retry that lacks the header is still caught; the token catches a
// retry whatever else it carries. The keys are namespaced so that the two
// kinds never collide. It also returns the keys it recorded as new,
// whatever the outcome (a delivery new by its MessageSid may be a
// duplicate by its token): the caller marks them Delivered once the
// delivery is answered; and, for a repeat, the key already recorded.
func (s *MessagesService) firstSeen(ctx context.Context, msg ports.InboundMessage) (first bool, recorded []string, repeat string, err error) {
	owner := s.instance.ID()
	sid := sidPrefix + msg.MessageSid
	first, err = s.ledger.FirstSeen(ctx, sid, owner)
	if err != nil || !first {
		return false, nil, sid, err
	}
	recorded = []string{sid}
	if msg.IdempotencyKey == "" {
		return true, recorded, "", nil
	}
	idem := idemPrefix + msg.IdempotencyKey
	first, err = s.ledger.FirstSeen(ctx, idem, owner)
	switch {
	case err != nil:
	case first:
		recorded = append(recorded, idem)
	default:
		repeat = idem
	}
	return first, recorded, repeat, err
}

// allKeys are the keys msg's delivery may be recorded under. A delivery
// taken over marks all of them: those the stopped gateway recorded, and
// those this one did (Delivered of a key never recorded does nothing).
func allKeys(msg ports.InboundMessage) []string {
	keys := []string{sidPrefix + msg.MessageSid}
	if msg.IdempotencyKey != "" {
		keys = append(keys, idemPrefix+msg.IdempotencyKey)
	}
	return keys
}

// markLater marks keys Delivered in a goroutine of the service, so that
// the webhook does not wait for it, and then stops tracking the message
// sid. The caller must hold a count in s.wg.
func (s *MessagesService) markLater(log *slog.Logger, sid string, keys []string) {
	if len(keys) == 0 {
		s.untrack(sid)
		return
	}
	s.wg.Go(func() {
		defer s.untrack(sid)
		s.markDelivered(log, keys)
	})
}

// track counts a delivery of the message sid in as one this process works
// on; untrack counts it out.
func (s *MessagesService) track(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[sid]++
}

func (s *MessagesService) untrack(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.untrackLocked(sid)
}

func (s *MessagesService) untrackLocked(sid string) {
	if s.inFlight[sid]--; s.inFlight[sid] <= 0 {
		delete(s.inFlight, sid)
	}
}

// markDelivered records that the delivery recorded under keys (its
// MessageSid key first) was answered. A failure is logged: the sweep may
// then report the delivery as never answered.
func (s *MessagesService) markDelivered(log *slog.Logger, keys []string) {
	ctx, cancel := context.WithTimeout(s.ctx, markTimeout)
	defer cancel()
	for _, k := range keys {
		if err := s.ledger.Delivered(ctx, k); err != nil {
			log.Warn("answer not recorded as delivered: it may be reported as never delivered", "err", err)
			return
		}
	}
}

// working reports whether this process is working on the message sid.
func (s *MessagesService) working(sid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[sid] > 0
}
